"""Tag report text with ATT&CK techniques: sentence classifier (TF-IDF word n-grams + one-vs-rest logistic
regression, optionally blended with sentence embeddings), report-level aggregation, supporting sentences.

The fitted model is plain arrays (numpy ``.npz`` loaded with ``allow_pickle=False``) plus a JSON
manifest: never pickle. Embeddings, when used, come in as arrays from an adapter (see
``healthsec.ingest.intel.embed``); this module does no I/O of its own beyond the artefact it is given.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])|\n\s*\n|\n(?=\s*[-*•\d]+[.)]?\s)")
MAX_SENTENCE = 1000  # characters: longer runs (tables, dumps) are cut into pieces of this size


def sentence_spans(text: str, start: int = 0) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` from ``start``: breaks at sentence ends, blank
    lines and list items; very long runs are cut so memory per sentence stays bounded."""
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _BREAK.finditer(text, start):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        for cut in range(s, e, MAX_SENTENCE):
            piece = (cut, min(e, cut + MAX_SENTENCE))
            if re.search(r"[A-Za-z]{2}", text[piece[0] : piece[1]]):
                out.append(piece)
    return out


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@dataclass(frozen=True, slots=True)
class TagResult:
    techniques: tuple[str, ...]  # best first
    scores: dict[str, float]
    evidence: dict[str, list[str]]  # technique -> its supporting sentences, best first


@dataclass
class TextTagger:
    """A fitted tagger. ``threshold`` applies per sentence; a technique is in a report when its best
    sentence reaches ``report_threshold``, or (``report_count`` > 0) when at least ``report_count``
    sentences reach ``count_threshold`` (see ``report_decision``). With ``gate_sentences`` a sentence
    counts for a technique only when the technique is in the report."""

    classes: list[str]
    vocabulary: list[str]
    idf: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray
    threshold: float = 0.5
    report_threshold: float = 0.5
    ngram_max: int = 2
    report_count: int = 0
    count_threshold: float = 1.0
    gate_sentences: bool = False
    context: float = 0.0  # weight of the neighbouring sentences' features (0: each sentence alone)
    emb_coef: np.ndarray | None = None  # (classes, dim) of a classifier on sentence embeddings
    emb_intercept: np.ndarray | None = None
    emb_weight: float = 0.0  # blend: (1 - w) * tfidf + w * embedding probabilities
    embedder: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    char_vocabulary: list[str] = field(default_factory=list)  # char 3-5-grams within words; empty: none
    char_idf: np.ndarray | None = None
    _vec: Any = None
    _char_vec: Any = None

    def _vectorizer(self) -> Any:
        if self._vec is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(
                ngram_range=(1, self.ngram_max),
                sublinear_tf=True,
                vocabulary={t: i for i, t in enumerate(self.vocabulary)},
                dtype=np.float32,
            )
            vec.idf_ = self.idf
            self._vec = vec
        return self._vec

    def _char_vectorizer(self) -> Any:
        if self._char_vec is None:
            vec = _char_tfidf(vocabulary={t: i for i, t in enumerate(self.char_vocabulary)})
            vec.idf_ = self.char_idf
            self._char_vec = vec
        return self._char_vec

    def sentence_proba(self, sentences: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Per-sentence probabilities, shape (sentences, classes)."""
        if not sentences:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        x = self._vectorizer().transform(sentences)
        if self.char_vocabulary:
            import scipy.sparse as sp

            x = sp.hstack([x, self._char_vectorizer().transform(sentences)], format="csr")
        x = with_context(x, [len(sentences)], self.context)
        p = _sigmoid(x @ self.coef.T + self.intercept)
        if self.emb_coef is not None and embeddings is not None and self.emb_weight > 0:
            q = _sigmoid(embeddings @ self.emb_coef.T + self.emb_intercept)
            p = (1 - self.emb_weight) * p + self.emb_weight * q
        return np.asarray(p, dtype=np.float32)

    def report_decision(self, best: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Which classes are in a report, from each class's best sentence probability and its number of
        sentences at or above ``count_threshold``."""
        picked = np.asarray(best) >= self.report_threshold
        if self.report_count > 0:
            picked |= np.asarray(counts) >= self.report_count
        return picked

    def tag_sentences(
        self, sentences: Sequence[str], embeddings: np.ndarray | None = None, max_evidence: int = 3
    ) -> TagResult:
        p = self.sentence_proba(sentences, embeddings)
        if p.shape[0] == 0:
            return TagResult((), {}, {})
        best = p.max(axis=0)
        chosen = self.report_decision(best, (p >= self.count_threshold).sum(axis=0))
        picked = [i for i in np.argsort(-best) if chosen[i]]
        evidence: dict[str, list[str]] = {}
        for i in picked:
            rows = [r for r in np.argsort(-p[:, i])[:max_evidence] if p[r, i] >= min(self.threshold, best[i])]
            evidence[self.classes[i]] = [sentences[r] for r in rows]
        return TagResult(
            tuple(self.classes[i] for i in picked),
            {self.classes[i]: round(float(best[i]), 4) for i in picked},
            evidence,
        )

    # ---- the artefact: JSON manifest + arrays, no pickle ----
    def to_arrays(self) -> tuple[dict[str, Any], bytes]:
        manifest = {
            "format": "healthsec-text-tagger/1",
            "classes": self.classes,
            "vocabulary": self.vocabulary,
            "char_vocabulary": self.char_vocabulary,
            "threshold": self.threshold,
            "report_threshold": self.report_threshold,
            "ngram_max": self.ngram_max,
            "report_count": self.report_count,
            "count_threshold": self.count_threshold,
            "gate_sentences": self.gate_sentences,
            "context": self.context,
            "emb_weight": self.emb_weight,
            "embedder": self.embedder,
            "meta": self.meta,
        }
        arrays = {"idf": self.idf, "coef": self.coef, "intercept": self.intercept}
        if self.char_idf is not None:
            arrays["char_idf"] = self.char_idf
        if self.emb_coef is not None and self.emb_intercept is not None:
            arrays |= {"emb_coef": self.emb_coef, "emb_intercept": self.emb_intercept}
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})  # type: ignore[arg-type]
        return manifest, buf.getvalue()

    @classmethod
    def from_arrays(cls, manifest: dict[str, Any], blob: bytes) -> TextTagger:
        if manifest.get("format") != "healthsec-text-tagger/1":
            raise ValueError(f"not a healthsec text tagger (format {manifest.get('format')!r})")
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        context = float(manifest.get("context") or 0.0)
        chars = list(manifest.get("char_vocabulary") or [])
        if chars and arrays.get("char_idf", np.zeros(0)).shape != (len(chars),):
            raise ValueError("tagger char n-gram weights do not fit its char vocabulary")
        width = (len(manifest["vocabulary"]) + len(chars)) * (2 if context > 0 else 1)
        if arrays["coef"].shape != (len(manifest["classes"]), width):
            raise ValueError("tagger arrays do not fit its class list and vocabulary")
        return cls(
            classes=list(manifest["classes"]),
            vocabulary=list(manifest["vocabulary"]),
            char_vocabulary=chars,
            char_idf=arrays.get("char_idf") if chars else None,
            idf=arrays["idf"],
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            threshold=float(manifest["threshold"]),
            report_threshold=float(manifest["report_threshold"]),
            ngram_max=int(manifest["ngram_max"]),
            report_count=int(manifest.get("report_count") or 0),
            count_threshold=float(manifest.get("count_threshold", 1.0)),
            gate_sentences=bool(manifest.get("gate_sentences", False)),
            context=context,
            emb_coef=arrays.get("emb_coef"),
            emb_intercept=arrays.get("emb_intercept"),
            emb_weight=float(manifest.get("emb_weight") or 0.0),
            embedder=manifest.get("embedder"),
            meta=dict(manifest.get("meta") or {}),
        )


def with_context(x: Any, lengths: Sequence[int], weight: float) -> Any:
    """Sentence features beside ``weight`` x the sum of the previous and next sentences' features of the
    same document (``lengths``: sentences per document, in row order). A technique is often named in
    the sentence after the one that describes it ("... a scheduled task. This gave them persistence.")."""
    if weight <= 0:
        return x
    import scipy.sparse as sp

    x = sp.csr_matrix(x)
    n = x.shape[0]
    first = np.cumsum([0, *lengths[:-1]]).astype(int)
    last = np.cumsum(lengths).astype(int) - 1
    has_prev = np.ones(n, dtype=np.float32)
    has_prev[first[first < n]] = 0
    has_next = np.ones(n, dtype=np.float32)
    has_next[last[(last >= 0) & (last < n)]] = 0
    empty = sp.csr_matrix((1, x.shape[1]), dtype=x.dtype)
    prev = sp.vstack([empty, x[:-1]]) if n > 1 else sp.csr_matrix(x.shape, dtype=x.dtype)
    nxt = sp.vstack([x[1:], empty]) if n > 1 else sp.csr_matrix(x.shape, dtype=x.dtype)
    around = sp.diags(has_prev) @ prev + sp.diags(has_next) @ nxt
    return sp.hstack([x, weight * around], format="csr", dtype=np.float32)


def _char_tfidf(**kw: Any) -> Any:
    """Character 3-5-grams inside word boundaries (sublinear tf): spellings such as ``cmd.exe``,
    ``schtasks``, ``rundll32`` and their variants that word n-grams split or miss."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32, **kw)


def _sigmoid(z: Any) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


def _fit_ovr(
    x: Any, y: np.ndarray, c: float, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One binary logistic regression per class (balanced weights); a class with no positive example
    gets a large negative intercept."""
    from sklearn.linear_model import LogisticRegression

    coefs, inters = [], []
    for j in range(y.shape[1]):
        yj = y[:, j]
        if yj.min() == yj.max():
            coefs.append(np.zeros(x.shape[1]))
            inters.append(-10.0 if yj.max() == 0 else 10.0)
            continue
        # the dual problem: the same optimum, about four times faster here (more n-grams than sentences)
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, solver="liblinear", dual=True)
        lr.fit(x, yj, sample_weight=weights)
        coefs.append(lr.coef_[0])
        inters.append(float(lr.intercept_[0]))
    return np.asarray(coefs, dtype=np.float32), np.asarray(inters, dtype=np.float32)


def label_matrix(labels: Iterable[Iterable[str]], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    rows = list(labels)
    y = np.zeros((len(rows), len(classes)), dtype=np.int8)
    for r, labs in enumerate(rows):
        for lab in labs:
            if lab in index:
                y[r, index[lab]] = 1
    return y


def fit_tagger(
    sentences: Sequence[str],
    labels: Sequence[Iterable[str]],
    classes: Sequence[str],
    *,
    c: float = 8.0,
    min_df: int = 2,
    max_features: int | None = 50_000,
    ngram_max: int = 2,
    threshold: float = 0.5,
    report_threshold: float = 0.5,
    report_count: int = 0,
    count_threshold: float = 1.0,
    gate_sentences: bool = False,
    lengths: Sequence[int] | None = None,
    context: float = 0.0,
    extra: Sequence[tuple[str, str]] = (),
    extra_weight: float = 1.0,
    embeddings: np.ndarray | None = None,
    emb_weight: float = 0.0,
    emb_c: float = 1.0,
    embedder: str | None = None,
    char_ngrams: bool = False,
) -> TextTagger:
    """TF-IDF word 1..``ngram_max``-grams (sublinear tf) + one-vs-rest logistic regression per class.

    ``lengths``: sentences per document in order (for ``context``, the neighbours' feature weight);
    ``extra``: more labelled ``(text, class)`` rows without neighbours, e.g. ATT&CK's procedure
    examples, weighted ``extra_weight`` each."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    extra = [(t, k) for t, k in extra if k in set(classes)]
    vec = TfidfVectorizer(
        ngram_range=(1, ngram_max),
        sublinear_tf=True,
        min_df=min_df,
        max_features=max_features,
        dtype=np.float32,
    )
    vec.fit([*sentences, *(t for t, _ in extra)])
    cvec = _char_tfidf(min_df=3, max_features=100_000) if char_ngrams else None
    if cvec is not None:
        cvec.fit([*sentences, *(t for t, _ in extra)])

    def features(texts: Sequence[str]) -> Any:
        xw = vec.transform(texts)
        return xw if cvec is None else sp.hstack([xw, cvec.transform(texts)], format="csr")

    x = with_context(features(sentences), list(lengths or [len(sentences)]), context)
    y = label_matrix(labels, classes)
    weights = None
    if extra:
        x_extra = features([t for t, _ in extra])
        if context > 0:
            x_extra = sp.hstack([x_extra, sp.csr_matrix(x_extra.shape, dtype=np.float32)], format="csr")
        x = sp.vstack([x, x_extra], format="csr")
        y = np.vstack([y, label_matrix([[k] for _, k in extra], classes)])
        weights = np.r_[np.ones(len(sentences)), np.full(len(extra), extra_weight)]
    coef, inter = _fit_ovr(x, y, c, weights)
    vocab = [""] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        vocab[i] = term
    tagger = TextTagger(
        classes=list(classes),
        vocabulary=vocab,
        idf=vec.idf_.astype(np.float32),
        coef=coef,
        intercept=inter,
        threshold=threshold,
        report_threshold=report_threshold,
        report_count=report_count,
        count_threshold=count_threshold,
        gate_sentences=gate_sentences,
        ngram_max=ngram_max,
        context=context,
    )
    if cvec is not None:
        chars = [""] * len(cvec.vocabulary_)
        for term, i in cvec.vocabulary_.items():
            chars[i] = term
        tagger.char_vocabulary, tagger.char_idf = chars, cvec.idf_.astype(np.float32)
    if embeddings is not None and emb_weight > 0:
        tagger.emb_coef, tagger.emb_intercept = _fit_ovr(embeddings, label_matrix(labels, classes), emb_c)
        tagger.emb_weight = emb_weight
        tagger.embedder = embedder
    return tagger


# ---- evaluation (report-level set F1 averaged over reports; sentence-level micro-F1) ----------------
def set_f1(true: set[str], pred: set[str]) -> float:
    if not true and not pred:
        return 1.0
    tp = len(true & pred)
    return 0.0 if tp == 0 else 2 * tp / (len(true) + len(pred))


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    tp = int((y_true & y_pred).sum())
    denom = int(y_true.sum() + y_pred.sum())
    return 0.0 if denom == 0 else 2 * tp / denom


# ---- the report-level decision, chosen on out-of-fold sentence probabilities (cross-validation by report) --
GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(16))  # 0.20 .. 0.95
COUNTS = (2, 3, 4, 6)


def choose_decision(
    probas: Sequence[np.ndarray], labels: Sequence[np.ndarray], grid: Sequence[float] = GRID
) -> dict[str, Any]:
    """The report rule and sentence threshold that maximise, over the given reports, the mean report F1
    (then sentence micro-F1), from out-of-fold sentence probabilities ``probas`` (one (sentences,
    classes) array per report) and the 0/1 sentence labels ``labels`` of the same shape. Candidates: best
    sentence >= t alone, or >= t OR at least k sentences >= t2 (t2 < t); then sentence threshold with and
    without gating by the report decision. Pure arithmetic: call it on training reports only."""
    if len(probas) != len(labels) or any(p.shape != y.shape for p, y in zip(probas, labels, strict=False)):
        raise ValueError("probabilities and labels must be given per report, with the same shapes")
    if not probas:
        raise ValueError("no reports to choose a decision on")
    g = np.asarray(grid)
    truth = np.array([lab.any(axis=0) for lab in labels], dtype=bool)  # (reports, classes)
    best = np.array([p.max(axis=0) if len(p) else np.zeros(p.shape[1]) for p in probas])
    counts = np.array([[(p >= t).sum(axis=0) for t in g] for p in probas])  # (reports, grid, classes)

    def mean_f1(pred: np.ndarray) -> float:
        tp = (pred & truth).sum(axis=1)
        denom = pred.sum(axis=1) + truth.sum(axis=1)
        f1 = np.where(denom == 0, 1.0, 2 * tp / np.maximum(denom, 1))
        return float(f1.mean())

    cands: list[tuple[float, float, int, float]] = []
    for t in g:
        base = best >= t
        cands.append((mean_f1(base), float(t), 0, 1.0))
        for i2, t2 in enumerate(g):
            if t2 >= t:
                break
            for k in COUNTS:
                cands.append((mean_f1(base | (counts[:, i2, :] >= k)), float(t), k, float(t2)))
    f1, t, k, t2 = max(cands, key=lambda c: (round(c[0], 6), c[1]))  # ties: the stricter threshold
    rule = TextTagger([], [], np.zeros(0), np.zeros((0, 0)), np.zeros(0), report_threshold=t)
    rule.report_count, rule.count_threshold = k, t2
    chosen = np.array(
        [rule.report_decision(b, (p >= t2).sum(axis=0)) for b, p in zip(best, probas, strict=True)]
    )
    y = np.vstack(labels).astype(bool)
    gate = np.vstack([np.broadcast_to(c, p.shape) for c, p in zip(chosen, probas, strict=True)])
    pall = np.vstack(probas)
    sent = max(
        (_micro(y, (pall >= s) & gate if gated else pall >= s), gated, float(s))
        for s in g
        for gated in (False, True)
    )
    return {
        "report_threshold": t,
        "report_count": k,
        "count_threshold": t2,
        "threshold": sent[2],
        "gate_sentences": sent[1],
        "cv_report_f1": round(f1, 4),
        "cv_sentence_micro_f1": round(sent[0], 4),
    }


def _micro(y: np.ndarray, pred: np.ndarray) -> float:
    tp = int((y & pred).sum())
    denom = int(y.sum() + pred.sum())
    return 0.0 if denom == 0 else 2 * tp / denom
