"""The report-level decision (best sentence >= t, or k sentences >= t2) chosen on out-of-fold
probabilities by cross-validation by report: bad shapes refused, the count rule found when it is what
separates present from absent techniques, the artefact keeping it, and tagging applying it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from healthsec.analyze.text_attack import choose_decision, fit_tagger
from healthsec.services.intel_text import load_tagger, save_tagger, tag_blocks


def test_mismatched_or_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="per report"):
        choose_decision([np.zeros((3, 2))], [np.zeros((3, 2)), np.zeros((1, 2))])
    with pytest.raises(ValueError, match="same shapes"):
        choose_decision([np.zeros((3, 2))], [np.zeros((2, 2))])
    with pytest.raises(ValueError, match="no reports"):
        choose_decision([], [])


def _reports(n: int = 12) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Class 0 is present in every report as several middling sentences (0.45) and never scores high;
    class 1 is absent but each report has one spurious sentence at 0.6."""
    probas, labels = [], []
    for _ in range(n):
        p = np.full((10, 2), 0.05)
        y = np.zeros((10, 2), dtype=np.int8)
        p[:4, 0], y[:4, 0] = 0.45, 1
        p[7, 1] = 0.6
        probas.append(p)
        labels.append(y)
    return probas, labels


def test_count_rule_is_chosen_when_best_sentence_alone_cannot_separate() -> None:
    probas, labels = _reports()
    d = choose_decision(probas, labels)
    assert d["cv_report_f1"] == 1.0
    assert d["report_count"] >= 2 and d["count_threshold"] <= 0.45 < 0.6 < d["report_threshold"]
    assert d["cv_sentence_micro_f1"] == 1.0 and d["threshold"] <= 0.45
    # a max-only rule cannot do this: with t <= 0.45 class 1 comes in, with t > 0.45 class 0 drops out
    alone = choose_decision(probas, labels, grid=(0.45,))
    assert alone["cv_report_f1"] < 1.0


def test_tagger_artefact_keeps_and_applies_the_rule(tmp_path: Path) -> None:
    sents = ["cmd.exe ran a batch script", "phishing email with attachment", "the weather was fine"] * 4
    labels = [["A"], ["B"], []] * 4
    t = fit_tagger(sents, labels, ["A", "B"], min_df=1, c=10.0, report_threshold=0.99)
    text = "Then cmd.exe ran a batch script. Later cmd.exe ran a batch script. The weather was fine."
    assert tag_blocks(t, [text]).techniques == []  # no sentence reaches 0.99
    t.report_count, t.count_threshold, t.gate_sentences = 2, 0.5, True
    save_tagger(t, tmp_path)
    again = load_tagger(tmp_path)
    assert (again.report_count, again.count_threshold, again.gate_sentences) == (2, 0.5, True)
    out = tag_blocks(again, [text])
    assert out.techniques == ["A"] and len(out.evidence["A"]) == 2


def test_char_ngram_tagger_round_trips_and_reads_unseen_spellings(tmp_path: Path) -> None:
    sents = ["they ran rundll32 to load it", "phishing email with attachment", "the weather was fine"] * 4
    labels = [["A"], ["B"], []] * 4
    t = fit_tagger(sents, labels, ["A", "B"], min_df=1, c=10.0, char_ngrams=True)
    assert (
        t.char_vocabulary
        and t.char_idf is not None
        and t.coef.shape[1] == len(t.vocabulary) + len(t.char_vocabulary)
    )
    save_tagger(t, tmp_path)
    again = load_tagger(tmp_path)
    probe = ["Then rundl32 loaded the payload.", "Nice weather."]
    assert np.allclose(again.sentence_proba(probe), t.sentence_proba(probe), atol=1e-5)
    words_only = fit_tagger(sents, labels, ["A", "B"], min_df=1, c=10.0)
    # the misspelt "rundl32" is no word the word vocabulary knows; its char n-grams are
    assert again.sentence_proba(probe)[0, 0] > words_only.sentence_proba(probe)[0, 0]
    import json

    manifest = json.loads((tmp_path / "tagger.json").read_text())
    manifest["char_vocabulary"] = manifest["char_vocabulary"][:-1]
    (tmp_path / "tagger.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="char"):
        load_tagger(tmp_path)
