"""Artefact metadata and loading: each kind loads and scores; a corrupted or mismatched one is refused."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from healthsec.detect.artefacts_load import ArtefactRefused, load_artefact
from healthsec.model.artefacts import ArtefactError, ModelArtefact, features_hash, fingerprint
from healthsec.testing.artefacts import T0, artefact_of, flow_frame, readings


def test_metadata_round_trips_and_names_its_formats(telemetry_files: dict[str, bytes]) -> None:
    art = artefact_of("telemetry", telemetry_files)
    assert art.features == ("pressure", "rate")
    assert art.formats == ("json", "lightgbm-text")
    assert art.id == "telemetry-v0"
    again = ModelArtefact.from_dict(art.to_dict())
    assert again == art
    assert again.created_at == T0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"created_at": datetime(2026, 1, 1)}, "no time zone"),
        ({"features_hash": features_hash(["x"])}, "features_hash does not match"),
        ({"files": {"model.pkl": "0" * 64}}, "not a safe model format"),
        ({"files": {"../model.txt": "0" * 64}}, "not a safe model format"),
        ({"files": {"model.txt": "abc"}}, "no SHA-256"),
        ({"kind": "Flows!"}, "lower-case"),
        ({"version": -1}, "version must be"),
    ],
)
def test_bad_metadata_is_refused_by_field(
    telemetry_files: dict[str, bytes], change: dict[str, object], message: str
) -> None:
    art = artefact_of("telemetry", telemetry_files)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(art, **change)  # type: ignore[arg-type]


def test_from_dict_names_unknown_and_missing_fields(telemetry_files: dict[str, bytes]) -> None:
    body = artefact_of("telemetry", telemetry_files).to_dict()
    with pytest.raises(ArtefactError, match=r"unknown artefact field.*colour"):
        ModelArtefact.from_dict({**body, "colour": "red"})
    del body["features"]
    with pytest.raises(ArtefactError, match="lacks field 'features'"):
        ModelArtefact.from_dict(body)


def test_fingerprint_ignores_order() -> None:
    assert fingerprint(["b" * 64, "a" * 64]) == fingerprint(["a" * 64, "b" * 64])
    assert fingerprint(["a" * 64]) != fingerprint(["b" * 64])


def test_telemetry_artefact_loads_and_scores(telemetry_files: dict[str, bytes]) -> None:
    loaded = load_artefact(artefact_of("telemetry", telemetry_files), telemetry_files)
    rs, cs = readings(40, 7, attack_every=4)
    pred = loaded.model.predict(rs)
    assert [bool(a) for a in pred.is_attack] == [c != "benign" for c in cs]


def test_flow_artefact_loads_and_scores(flow_files: dict[str, bytes]) -> None:
    art = artefact_of("flows", flow_files)
    assert art.features == ("duration", "src_bytes", "dst_bytes", "service")
    loaded = load_artefact(art, flow_files)
    pred = loaded.model.predict(flow_frame(50, 9))
    assert len(pred.score) == 50


def test_device_artefact_loads(device_files: dict[str, bytes]) -> None:
    loaded = load_artefact(artefact_of("devices", device_files), device_files)
    assert loaded.model.classes == ["infusion-pump", "monitor"]


def _refusal(art: ModelArtefact, files: dict[str, bytes], **kw: object) -> str:
    with pytest.raises(ArtefactRefused) as info:
        load_artefact(art, files, **kw)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"model artefact {art.id} ")
    return message


def test_corrupted_file_is_refused(telemetry_files: dict[str, bytes]) -> None:
    art = artefact_of("telemetry", telemetry_files)
    bad = {**telemetry_files, "model.txt": telemetry_files["model.txt"][:-40]}
    assert "model.txt does not match its recorded SHA-256" in _refusal(art, bad)


def test_unreadable_file_with_a_matching_digest_is_refused(telemetry_files: dict[str, bytes]) -> None:
    bad = {**telemetry_files, "model.txt": b"tree\nnot a lightgbm model"}
    assert "cannot be read" in _refusal(artefact_of("telemetry", bad), bad)


def test_feature_schema_mismatch_is_refused(telemetry_files: dict[str, bytes]) -> None:
    art = artefact_of("telemetry", telemetry_files)
    other = dataclasses.replace(art, features=("rate", "spo2"), features_hash=features_hash(["rate", "spo2"]))
    message = _refusal(other, telemetry_files)
    assert "feature schema mismatch" in message and "spo2" in message and "pressure" in message


def test_feature_order_change_is_refused(telemetry_files: dict[str, bytes]) -> None:
    art = artefact_of("telemetry", telemetry_files)
    swapped = ("rate", "pressure")
    other = dataclasses.replace(art, features=swapped, features_hash=features_hash(swapped))
    assert "another order" in _refusal(other, telemetry_files)


def test_other_format_version_is_refused(telemetry_files: dict[str, bytes]) -> None:
    art = dataclasses.replace(artefact_of("telemetry", telemetry_files), format_version=99)
    assert "format version 99, this code reads version 2" in _refusal(art, telemetry_files)


def test_missing_and_unrecorded_files_are_refused(flow_files: dict[str, bytes]) -> None:
    art = artefact_of("flows", flow_files)
    short = {k: v for k, v in flow_files.items() if k != "iforest.skops"}
    assert "iforest.skops missing" in _refusal(art, short)
    assert "unrecorded file(s) extra.json" in _refusal(art, {**flow_files, "extra.json": b"{}"})


def test_unknown_kind_is_refused(telemetry_files: dict[str, bytes]) -> None:
    art = dataclasses.replace(artefact_of("telemetry", telemetry_files), kind="pcap-magic")
    assert "unknown kind 'pcap-magic'" in _refusal(art, telemetry_files)


def test_features_the_events_lack_are_refused(flow_files: dict[str, bytes]) -> None:
    art = artefact_of("flows", flow_files)
    message = _refusal(art, flow_files, available_features={"duration", "service"})
    assert "needs 2 feature(s) the events do not carry: src_bytes, dst_bytes" in message


def test_device_schema_other_than_the_code_is_refused(device_files: dict[str, bytes]) -> None:
    import json

    meta = json.loads(device_files["devices.json"])
    meta["flow_stats"] = meta["flow_stats"][:-1]
    files = {**device_files, "devices.json": json.dumps(meta).encode()}
    assert "flow statistics differ" in _refusal(artefact_of("devices", files), files)
