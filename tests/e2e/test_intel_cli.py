"""``healthsec intel ...`` end to end: CSAF / KEV / EPSS import, inventory matching, matches, risk, tagging
with a tiny trained model, indicators; bad input gives one clear line."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from healthsec.analyze.text_attack import fit_tagger
from healthsec.cli import app
from healthsec.services.intel_text import save_tagger


def _run(*args: str, stdin: str | bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_advisory_to_inventory_flow(tmp_path: Path, shared_data: Path) -> None:
    db = str(tmp_path / "hs.db")
    advs = tmp_path / "advs"
    advs.mkdir()
    shutil.copy(shared_data / "cisa-csaf-icsma/2021/icsma-21-187-01.json", advs)  # Philips Vue PACS
    shutil.copy(
        shared_data / "cisa-csaf-icsma/2018/icsma-18-058-02.json", advs
    )  # "Phillips" IntelliSpace Portal
    (advs / "bad.json").write_text('{"document": {"csaf_version": "2.0"}}')
    code, out = _run("intel", "import-csaf", str(advs), "--db", db)
    assert code == 0, out
    assert "2 advisories stored" in out and "bad.json: fails the CSAF 2.0 schema" in " ".join(out.split())
    kev = {
        "catalogVersion": "2025.08.25",
        "dateReleased": "2025-08-25T00:00:00Z",
        "vulnerabilities": [{"cveID": "CVE-2017-0144", "dateAdded": "2022-02-10"}],
    }
    (tmp_path / "kev.json.gz").write_bytes(gzip.compress(json.dumps(kev).encode()))
    code, out = _run("intel", "import-kev", str(tmp_path / "kev.json.gz"), "--db", db)
    assert code == 0 and "1 entries stored" in out, out
    (tmp_path / "epss.csv").write_text(
        "#model_version:v1,score_date:2026-01-30T00:00:00Z\ncve,epss,percentile\nCVE-2017-0144,0.94,0.99\n"
    )
    code, out = _run("intel", "import-epss", str(tmp_path / "epss.csv"), "--db", db)
    assert code == 0, out
    (tmp_path / "old.csv").write_text(
        "#model_version:v0,score_date:2020-01-01T00:00:00Z\ncve,epss\nCVE-2017-0144,0.1\n"
    )
    code, out = _run("intel", "import-epss", str(tmp_path / "old.csv"), "--db", db)
    assert code == 0 and "older than the stored one" in out
    code, out = _run("intel", "import-kev", str(tmp_path / "epss.csv"), "--db", db)
    assert code == 1 and "unknown layout" in out
    (tmp_path / "inv.csv").write_text(
        "name,ip,zone,role,vendor,model,firmware\n"
        "pacs-01,10.30.0.10,imaging,pacs,Philips,Vue PACS,12.2.1.0\n"
        "isp-01,10.30.0.40,imaging,imaging workstation,Philips,IntelliSpace Portal,8.0.2\n"
        "isp-02,10.30.0.41,imaging,imaging workstation,Philips,IntelliSpace Portal,9.0\n"
    )
    code, out = _run("assets", "import", str(tmp_path / "inv.csv"), "--db", db)
    assert code == 0, out
    code, out = _run("intel", "match", "--db", db)
    assert code == 0 and "2 asset-advisory matches" in out, out
    code, out = _run("intel", "matches", "--format", "json", "--db", db)
    rows = json.loads(out)
    assert {(r["asset"], r["advisory"]) for r in rows} == {
        ("pacs-01", "ICSMA-21-187-01"),
        ("isp-01", "ICSMA-18-058-02"),
    }
    isp = next(r for r in rows if r["asset"] == "isp-01")
    assert "CVE-2017-0144" in isp["kev"] and isp["epss_max"] == 0.94
    assert any("'Philips' ~ 'Phillips'" in r for r in isp["reasons"])
    code, out = _run("risk", "--json", "--db", db)
    ranked = json.loads(out)
    isp_risk = next(r for r in ranked if r["asset_id"] == "isp-01")
    assert any("CVE-2017-0144 is known exploited" in f["detail"] for f in isp_risk["likelihood_factors"])
    code, out = _run("intel", "show", "ICSMA-21-187-01", "--db", db)
    assert code == 0 and "summary:" in out
    code, out = _run("intel", "matches", "--format", "xml", "--db", db)
    assert code == 1 and "--format must be table or json" in out


def test_tag_and_iocs(tmp_path: Path) -> None:
    sents = [
        "They ran cmd.exe to execute scripts.",
        "The ransomware encrypted all files.",
        "The sky was blue.",
    ] * 4
    labels = [["T1059.003"], ["T1486"], []] * 4
    save_tagger(fit_tagger(sents, labels, ["T1059.003", "T1486"], min_df=1, c=10.0), tmp_path / "m")
    code, out = _run(
        "intel",
        "tag",
        "--model",
        str(tmp_path / "m"),
        "--format",
        "json",
        stdin="Operators ran cmd.exe to execute a script. The sky was blue.",
    )
    assert code == 0, out
    res = json.loads(out)
    assert res["techniques"] == ["T1059.003"] and "cmd.exe" in res["evidence"]["T1059.003"][0]
    batch = tmp_path / "in.jsonl"
    batch.write_text(
        '{"id": "a", "text": "The ransomware encrypted files."}\n{"id": "b", "text": "Blue sky."}\n'
    )
    code, out = _run("intel", "tag", str(batch), "--model", str(tmp_path / "m"), "--format", "json")
    lines = [json.loads(x) for x in out.splitlines()]
    assert (
        [x["id"] for x in lines] == ["a", "b"]
        and lines[0]["techniques"] == ["T1486"]
        and lines[1]["techniques"] == []
    )
    (tmp_path / "bin").write_bytes(b"\x00\x01binary")
    code, out = _run("intel", "tag", str(tmp_path / "bin"), "--model", str(tmp_path / "m"))
    assert code == 1 and "binary input" in out
    code, out = _run("intel", "tag", "--model", str(tmp_path / "none"), stdin="x")
    assert code == 1 and "train-tagger" in out
    code, out = _run(
        "intel", "iocs", "--format", "json", stdin="Beacon to 10.1.2[.]3 via evil[.]example[.]com."
    )
    assert code == 0, out
    assert {(i["type"], i["value"]) for i in json.loads(out)} >= {
        ("ipv4", "10.1.2.3"),
        ("domain", "evil.example.com"),
    }


def test_train_tagger_with_attack_examples_and_context(tmp_path: Path) -> None:
    data = tmp_path / "tram"
    data.mkdir()
    (data / "classes.txt").write_text("T1059.003\nT1027\n")
    body = "title: A\nurl: http://x\nThey ran cmd.exe /c dir. The weather was mild. Nothing else."
    start = body.index("They")
    for i in range(6):
        doc = {
            "signal": body,
            "asets": [{"type": "Windows Command Shell (T1059.003)", "annots": [[start, start + 10]]}],
        }
        (data / f"r{i}.mjson").write_text(json.dumps(doc))
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "report", "objects": []}')
    args = ["intel", "train-tagger", "--data", str(data), "--out", str(tmp_path / "m"), "--holdout", "2"]
    code, out = _run(*args, "--attack", str(bad))
    assert code == 1 and "bad.json" in out and "not a STIX bundle" in out
    code, out = _run(*args, "--context", "-1")
    assert code == 1 and "--context" in out
    bundle = tmp_path / "attack.json"
    pattern = {
        "type": "attack-pattern",
        "id": "attack-pattern--1",
        "name": "Obfuscated Files or Information",
        "external_references": [{"source_name": "mitre-attack", "external_id": "T1027"}],
    }
    uses = {
        "type": "relationship",
        "relationship_type": "uses",
        "source_ref": "malware--1",
        "target_ref": "attack-pattern--1",
        "description": "The payload was obfuscated with XOR encoding.",
    }
    bundle.write_text(json.dumps({"type": "bundle", "objects": [pattern, uses, uses]}))
    code, out = _run(*args, "--attack", str(bundle), "--context", "0.3", "--format", "json")
    assert code == 0, out
    manifest = json.loads((tmp_path / "m" / "tagger.json").read_text())
    assert manifest["context"] == 0.3 and "xor" in manifest["vocabulary"]
