"""The tagger's extra knowledge: ATT&CK procedure examples as training text (malformed bundle first),
neighbouring-sentence context kept inside one document, and both surviving the pickle-free artefact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from healthsec.analyze.attack_build import BuildError, procedure_examples
from healthsec.analyze.text_attack import fit_tagger, with_context
from healthsec.services.intel_text import attack_examples, load_tagger, save_tagger

CLASSES = ["T1059.003", "T1486", "T1027"]


def _pattern(stix: str, tid: str, name: str, **kw: Any) -> dict[str, Any]:
    ref = {"source_name": "mitre-attack", "external_id": tid}
    return {"type": "attack-pattern", "id": stix, "name": name, "external_references": [ref], **kw}


def _uses(src: str, dst: str, text: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "relationship",
        "id": f"relationship--{abs(hash(text))}",
        "relationship_type": "uses",
        "source_ref": src,
        "target_ref": dst,
        "description": text,
        **kw,
    }


BUNDLE = {
    "type": "bundle",
    "objects": [
        _pattern("attack-pattern--1", "T1059.003", "Windows Command Shell"),
        _pattern("attack-pattern--2", "T1027.013", "Encrypted/Encoded File"),
        _pattern("attack-pattern--3", "T1486", "Data Encrypted for Impact", revoked=True),
        _uses(
            "malware--a",
            "attack-pattern--1",
            "[Explosive](https://attack.mitre.org/software/S0569) has used `cmd.exe`.(Citation: CheckPoint)",
        ),
        _uses("intrusion-set--b", "attack-pattern--2", "APT9 encoded its payload with XOR."),
        _uses("intrusion-set--b", "attack-pattern--3", "APT9 encrypted the shares."),  # revoked target
        _uses("intrusion-set--b", "attack-pattern--1", "old text", x_mitre_deprecated=True),
        {"type": "relationship", "relationship_type": "mitigates", "target_ref": "attack-pattern--1"},
    ],
}


def test_procedure_examples_refuse_what_is_not_a_bundle() -> None:
    with pytest.raises(BuildError, match="not a STIX bundle"):
        procedure_examples({"type": "report", "objects": []})
    with pytest.raises(BuildError, match="not a STIX bundle"):
        procedure_examples({"type": "bundle", "objects": "x"})


def test_procedure_examples_are_clean_text_of_active_techniques(tmp_path: Path) -> None:
    got = procedure_examples(BUNDLE)
    assert ("Explosive has used `cmd.exe`.", "T1059.003") in got
    assert ("APT9 encoded its payload with XOR.", "T1027.013") in got
    assert ("Windows Command Shell", "T1059.003") in got  # technique names too
    assert not any(t == "T1486" or text == "old text" for text, t in got)  # revoked / deprecated left out
    path = tmp_path / "bundle.json"
    path.write_bytes(orjson.dumps(BUNDLE))
    mapped = attack_examples(path, CLASSES)  # a sub-technique outside the classes counts as its parent
    assert ("APT9 encoded its payload with XOR.", "T1027") in mapped
    assert {t for _, t in mapped} == {"T1059.003", "T1027"}


def test_context_adds_neighbours_within_a_document_only() -> None:
    x = np.eye(4, dtype=np.float32)
    out = with_context(x, [2, 2], 0.5).toarray()
    assert out.shape == (4, 8)
    assert np.array_equal(out[:, :4], x)
    assert np.array_equal(out[0, 4:], [0, 0.5, 0, 0])  # first of doc 1: only the next sentence
    assert np.array_equal(out[1, 4:], [0.5, 0, 0, 0])  # last of doc 1: not doc 2's first
    assert np.array_equal(out[2, 4:], [0, 0, 0, 0.5])
    assert with_context(x, [4], 0.0) is x


def test_extra_examples_teach_a_class_and_context_survives_the_artefact(tmp_path: Path) -> None:
    sentences = [
        "They used cmd.exe to execute batch scripts.",
        "The weather was mild.",
        "The ransomware encrypted every share.",
        "A ransom note was left.",
    ] * 3
    labels = [["T1059.003"], [], ["T1486"], ["T1486"]] * 3
    extra = [("The payload was obfuscated with XOR and base64 encoding.", "T1027")] * 4
    plain = fit_tagger(sentences, labels, CLASSES, min_df=1, c=10.0)
    taught = fit_tagger(
        sentences, labels, CLASSES, min_df=1, c=10.0, lengths=[4, 4, 4], context=0.3, extra=extra
    )
    probe = ["The loader was obfuscated with XOR encoding."]
    k = CLASSES.index("T1027")
    assert plain.sentence_proba(probe)[0, k] < 0.5 < taught.sentence_proba(probe)[0, k]
    save_tagger(taught, tmp_path)
    again = load_tagger(tmp_path)
    assert again.context == pytest.approx(0.3)
    doc = ["The ransomware encrypted every share.", "They used cmd.exe to execute batch scripts."]
    assert np.allclose(again.sentence_proba(doc), taught.sentence_proba(doc), atol=1e-5)
