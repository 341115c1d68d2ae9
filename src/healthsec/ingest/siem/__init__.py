"""Inputs from the hospital's existing stack: Suricata EVE, Wazuh alerts, syslog and NetFlow/IPFIX."""

from healthsec.ingest.siem.eve import EveSource
from healthsec.ingest.siem.wazuh import WazuhAlertsSource

__all__ = ["EveSource", "WazuhAlertsSource"]
