"""ATT&CK tagging on a tiny fixture (never the whole TRAM set), the safe artefact, bounded streaming,
JSON Lines batches, bad input; indicators with context; TRAM .mjson reading and the split by report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from healthsec.analyze.text_attack import fit_tagger, sentence_spans, set_f1
from healthsec.analyze.text_iocs import indicators_with_context
from healthsec.ingest.intel.tram import load_tram, split_by_report
from healthsec.services.intel_text import (
    TextInputError,
    evaluate,
    load_tagger,
    save_tagger,
    tag_blocks,
    tag_jsonl,
    text_blocks,
)

CLASSES = ["T1059.003", "T1566.001", "T1486"]
TRAIN = [
    ("The actor ran cmd.exe /c whoami through the Windows command shell.", ["T1059.003"]),
    ("They used cmd.exe to execute batch scripts on the host.", ["T1059.003"]),
    ("A spearphishing email carried a malicious Word attachment.", ["T1566.001"]),
    ("Victims received phishing emails with an attached macro document.", ["T1566.001"]),
    ("The ransomware encrypted files on every share and left a ransom note.", ["T1486"]),
    ("Files were encrypted for impact and a ransom was demanded.", ["T1486"]),
    ("The weather in the city was mild that week.", []),
    ("The report was published on a Tuesday by the vendor.", []),
] * 3


@pytest.fixture
def tagger():  # type: ignore[no-untyped-def]
    return fit_tagger(
        [s for s, _ in TRAIN], [lab for _, lab in TRAIN], CLASSES, min_df=1, c=10.0, report_threshold=0.5
    )


def test_tagger_finds_techniques_with_supporting_sentences(tagger) -> None:  # type: ignore[no-untyped-def]
    text = (
        "Initial access came from a phishing email with a malicious attachment. "
        "Later the operators ran cmd.exe to execute scripts. The weather was mild."
    )
    out = tag_blocks(tagger, [text])
    assert set(out.techniques) == {"T1566.001", "T1059.003"}
    assert out.scores[out.techniques[0]] >= out.scores[out.techniques[-1]]  # best first
    assert "cmd.exe" in out.evidence["T1059.003"][0]
    assert "T1486" not in out.techniques


def test_artefact_is_json_and_arrays_without_pickle(tagger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    save_tagger(tagger, tmp_path)
    manifest = json.loads((tmp_path / "tagger.json").read_text())
    assert manifest["format"] == "healthsec-text-tagger/1" and manifest["classes"] == CLASSES
    with np.load(tmp_path / "tagger.npz", allow_pickle=False) as z:
        assert z["coef"].shape == (3, len(manifest["vocabulary"]))
    again = load_tagger(tmp_path)
    s = ["They used cmd.exe to run a batch file."]
    assert np.allclose(again.sentence_proba(s), tagger.sentence_proba(s), atol=1e-5)
    manifest["classes"] = CLASSES[:2]
    (tmp_path / "tagger.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="do not fit"):
        load_tagger(tmp_path)
    with pytest.raises(FileNotFoundError, match="train-tagger"):
        load_tagger(tmp_path / "none")


def test_jsonl_batch_gives_one_result_per_line_and_names_a_bad_line(tagger) -> None:  # type: ignore[no-untyped-def]
    lines = (
        b'{"id": "r1", "text": "The ransomware encrypted the files."}\n\n{"id": 2, "text": "Nothing here."}\n'
    )
    out = list(tag_jsonl(tagger, io.BytesIO(lines), "in.jsonl"))
    assert [o["id"] for o in out] == ["r1", 2]
    assert out[0]["techniques"] == ["T1486"] and set(out[0]) == {"id", "techniques", "scores", "evidence"}
    with pytest.raises(TextInputError, match=r"in.jsonl line 2: expected"):
        list(tag_jsonl(tagger, io.BytesIO(b'{"id": 1, "text": "x"}\n{"text": "no id"}\n'), "in.jsonl"))
    with pytest.raises(TextInputError, match="line 1: not JSON"):
        list(tag_jsonl(tagger, io.BytesIO(b"{oops\n"), "in.jsonl"))


def test_binary_and_non_utf8_input_get_clear_errors() -> None:
    with pytest.raises(TextInputError, match="binary input"):
        list(text_blocks(io.BytesIO(b"MZ\x90\x00\x03"), "a.exe"))
    with pytest.raises(TextInputError, match="not UTF-8"):
        list(text_blocks(io.BytesIO("café".encode("latin-1") + b" text"), "a.txt"))


def test_large_text_is_processed_block_by_block(tagger) -> None:  # type: ignore[no-untyped-def]
    sentence = "The operators ran cmd.exe to execute scripts. "
    raw = (sentence * 2000).encode()  # ~90 kB through 4 kB blocks
    blocks = list(text_blocks(io.BytesIO(raw), "big.txt", block=4096))
    assert len(blocks) > 10 and max(len(b) for b in blocks) < 4 * 4096
    assert "".join(blocks) == raw.decode()
    out = tag_blocks(tagger, blocks)
    assert out.techniques[0] == "T1059.003" and len(out.evidence["T1059.003"]) == 3


def test_sentence_spans_break_on_sentences_and_bound_long_runs() -> None:
    text = "First one. Second one!\n\nThird line\n- item one\n\n" + "x" * 2500
    pieces = [text[s:e] for s, e in sentence_spans(text)]
    assert pieces[:4] == ["First one.", "Second one!", "Third line", "- item one"]
    assert all(len(p) <= 1000 for p in pieces)


def test_indicators_with_context_include_defanged_addresses() -> None:
    text = (
        "The C2 server was 185.220.101[.]4 and hxxp://update-check[.]net/a.php was used. "
        "A dropper with SHA-256 "
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ran setup.exe. "
        "It exploited CVE-2021-44228."
    )
    found = {(i["type"], i["value"]): i["context"] for i in indicators_with_context(text)}
    assert ("ipv4", "185.220.101.4") in found
    assert ("domain", "update-check.net") in found
    assert ("url", "http://update-check.net/a.php") in found
    assert ("cve", "CVE-2021-44228") in found
    assert found[("cve", "CVE-2021-44228")] == "It exploited CVE-2021-44228."
    assert not any(v == "setup.exe" for _t, v in found)


def _mjson(text: str, spans: dict[str, list[list[int]]]) -> dict[str, object]:
    asets = [{"type": "SEGMENT", "attrs": [], "annots": [[0, len(text), "x", "content", "human gold"]]}]
    asets += [{"type": label, "attrs": [], "annots": a} for label, a in spans.items()]
    return {"signal": text, "asets": asets, "version": 2}


def test_tram_reports_load_collapse_and_split_by_report(tmp_path: Path, tagger) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES))
    body = "title: A\nurl: http://x\nThey ran cmd.exe /c dir. The files were encrypted for impact. Nothing."
    start = body.index("They")
    enc = body.index("The files")
    for i in range(5):
        doc = _mjson(
            body,
            {
                "Windows Command Shell (T1059.003)": [[start, start + 10]],
                "Data Encrypted for Impact (T1486.001)": [[enc, enc + 12]],  # sub-technique -> parent class
                "[OTHER]": [[0, 5]],
            },
        )
        (tmp_path / f"report {i}.mjson").write_text(json.dumps(doc))
    reports, classes = load_tram(tmp_path)
    assert classes == CLASSES and len(reports) == 5
    r = reports[0]
    assert r.sentences[0] == "They ran cmd.exe /c dir."  # the title/url header is skipped
    assert r.labels[:3] == (frozenset({"T1059.003"}), frozenset({"T1486"}), frozenset())
    train, test = split_by_report(reports, n_test=2)
    assert len(train) == 3 and len(test) == 2
    assert not {x.title for x in train} & {x.title for x in test}  # by report, never by sentence
    scores = evaluate(tagger, test)
    assert scores["reports"] == 2 and 0.0 <= scores["report_f1"] <= 1.0


def test_set_f1() -> None:
    assert set_f1(set(), set()) == 1.0
    assert set_f1({"a", "b"}, {"a"}) == pytest.approx(2 / 3)
    assert set_f1({"a"}, {"b"}) == 0.0
