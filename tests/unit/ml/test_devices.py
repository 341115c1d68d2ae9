"""Device identification on UNR captures: unseen trials are named, an unseen device type is 'unknown'."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.detect.ml.devices import UNKNOWN, DeviceIdentifier, domain_of
from healthsec.ingest.flows.pcap import read_capture
from healthsec.model.capture import Capture

DEVICES = ("kardiamobile", "babymonitor", "guardianalertsystem", "ketoscanketonemeter")


@pytest.fixture(scope="module")
def captures(shared_data: Path) -> dict[tuple[str, int], list[Capture]]:
    root = shared_data / "medical-device-traffic-unr" / "pcaps"
    out: dict[tuple[str, int], list[Capture]] = {}
    for dev in DEVICES:
        for p in sorted((root / dev).rglob("[2-4]_*.pcap.gz")):
            if "bluetooth" in p.parts:
                continue
            trial = int(p.name.split(".")[0].split("_")[1])
            out.setdefault((dev, trial), []).append(read_capture(p))
    return out


def test_domain_of() -> None:
    assert domain_of("us-kardia-production.alivecor.com") == "alivecor.com"
    assert domain_of("www.nhs.co.uk") == "nhs.co.uk"
    assert domain_of(None) is None


def test_unseen_trials_are_identified(captures: dict[tuple[str, int], list[Capture]]) -> None:
    train = [(c, d) for (d, t), cs in captures.items() if t == 1 for c in cs]
    test = [(c, d) for (d, t), cs in captures.items() if t == 2 for c in cs]
    ident = DeviceIdentifier().fit([c for c, _ in train], [d for _, d in train])
    results = [ident.identify(c)[0] for c, _ in test]
    correct = sum(r == d for r, (_, d) in zip(results, test, strict=True))
    assert len(test) >= 10 and correct >= len(test) - 1
    flows = [(f, d) for c, d in test for f in ident.identify_flows(c)]
    assert sum(f == d for f, d in flows) / len(flows) > 0.85


def test_unseen_device_type_comes_out_unknown(captures: dict[tuple[str, int], list[Capture]]) -> None:
    train = [(c, d) for (d, _), cs in captures.items() if d != "babymonitor" for c in cs]
    ident = DeviceIdentifier().fit([c for c, _ in train], [d for _, d in train])
    held_out = [c for (d, _), cs in captures.items() if d == "babymonitor" for c in cs]
    results = [ident.identify(c) for c in held_out]
    assert all(r[0] == UNKNOWN for r in results), results
    assert all(r[2] for r in results)  # each says why


def test_artifacts_round_trip(captures: dict[tuple[str, int], list[Capture]]) -> None:
    caps = [(c, d) for (d, t), cs in captures.items() if t == 1 for c in cs]
    ident = DeviceIdentifier().fit([c for c, _ in caps], [d for _, d in caps])
    files = ident.to_artifacts({"note": "test"})
    assert all(name.endswith((".json", ".skops")) for name in files)
    again = DeviceIdentifier.from_artifacts(files)
    assert [again.identify(c) for c, _ in caps] == [ident.identify(c) for c, _ in caps]
