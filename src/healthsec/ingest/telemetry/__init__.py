"""IoMT telemetry ingestion: MQTT subscriber, generic CSV and TON_IoT readers -> DeviceReading events."""

from healthsec.ingest.telemetry.csv_source import FORMATS, Labelled, TelemetryCsvSource, TelemetryFormat
from healthsec.ingest.telemetry.mqtt import MqttTelemetrySource, device_from_topic, parse_payload

__all__ = [
    "FORMATS",
    "Labelled",
    "MqttTelemetrySource",
    "TelemetryCsvSource",
    "TelemetryFormat",
    "device_from_topic",
    "parse_payload",
]
