"""Score alerts and incidents against the simulator's ground truth (labels never reach detectors)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from healthsec.model import Alert, Incident
from healthsec.sim.campaigns import CampaignInfo


@dataclass(frozen=True)
class Evaluation:
    """Alert precision/recall against ground truth, and per-campaign detection."""

    alert_precision: float | None
    alert_recall: float | None
    event_precision: float | None
    campaigns: list[dict[str, Any]]
    incident_purity: float | None
    false_alerts_per_benign_day: int = 0
    false_alerts_learning_day: int = 0
    false_alerts_by_detector: dict[str, int] = field(default_factory=dict)
    false_alerts_by_hard_negative: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_precision": self.alert_precision,
            "alert_recall": self.alert_recall,
            "event_precision": self.event_precision,
            "incident_purity": self.incident_purity,
            "false_alerts_per_benign_day": self.false_alerts_per_benign_day,
            "false_alerts_learning_day": self.false_alerts_learning_day,
            "false_alerts_by_detector": self.false_alerts_by_detector,
            "false_alerts_by_hard_negative": self.false_alerts_by_hard_negative,
            "campaigns": self.campaigns,
        }


def alert_campaign(alert: Alert, labels: Mapping[str, str | None]) -> str | None:
    """The campaign most of an alert's evidence belongs to (None when most of it is benign)."""
    votes = Counter(labels.get(e) for e in alert.evidence)
    if not votes:
        return None
    return votes.most_common(1)[0][0]


def evaluate(
    alerts: Sequence[Alert],
    incidents: Sequence[Incident],
    labels: Mapping[str, str | None],
    campaigns: Sequence[CampaignInfo],
    raised_at: Mapping[str, datetime] | None = None,
    hard_negatives: Mapping[str, str] | None = None,
) -> Evaluation:
    """Alert precision: share of alerts whose evidence is mostly campaign events.
    Alert recall: share of campaign events that some alert cites as evidence.
    Event precision: share of cited events that belong to a campaign.
    First alert: when the first alert of a campaign was raised (``raised_at``, else its first evidence).
    False alerts per benign day: alerts on the evaluated day (evidence among ``labels``) whose evidence is
    mostly benign: that day carries a whole day of benign activity, hard negatives included, with every
    detector running; those on the learning day (only rules run then) are counted apart. Each false
    alert is also counted under its detector and under the hard-negative kind most of its evidence is
    (``hard_negatives``; ``ordinary`` when none of it is).
    """
    raised = raised_at or {}
    malicious = {e for e, c in labels.items() if c}
    cited = {e for a in alerts for e in a.evidence}
    true_alerts = [a for a in alerts if alert_campaign(a, labels)]
    precision = len(true_alerts) / len(alerts) if alerts else None
    recall = len(cited & malicious) / len(malicious) if malicious else None
    event_precision = len(cited & malicious) / len(cited) if cited else None
    rows = []
    for info in campaigns:
        mine = [a for a in alerts if alert_campaign(a, labels) == info.name]
        first = min((raised.get(a.id, a.ts) for a in mine), default=None)
        events = {e for e, c in labels.items() if c == info.name}
        rows.append(
            {
                "name": info.name,
                "description": info.description,
                "techniques": list(info.techniques),
                "detected": bool(mine),
                "alerts": len(mine),
                "event_recall": round(len(cited & events) / len(events), 4) if events else None,
                "first_alert_seconds": None
                if first is None
                else round((first - info.start).total_seconds(), 1),
            }
        )
    hard = hard_negatives or {}
    false_day = false_learning = 0
    by_detector: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    for a in alerts:
        if alert_campaign(a, labels):
            continue
        if not any(e in labels for e in a.evidence):
            false_learning += 1
            continue
        false_day += 1
        by_detector[a.detector] += 1
        kinds = Counter(hard.get(e, "ordinary") for e in a.evidence)
        by_kind[kinds.most_common(1)[0][0] if kinds else "ordinary"] += 1
    by_id = {a.id: a for a in alerts}
    pure = []
    for inc in incidents:
        votes = Counter(alert_campaign(by_id[i], labels) for i in inc.alert_ids if i in by_id)
        if votes:
            pure.append(votes.most_common(1)[0][1] / sum(votes.values()))
    purity = sum(pure) / len(pure) if pure else None
    return Evaluation(
        alert_precision=None if precision is None else round(precision, 4),
        alert_recall=None if recall is None else round(recall, 4),
        event_precision=None if event_precision is None else round(event_precision, 4),
        campaigns=rows,
        incident_purity=None if purity is None else round(purity, 4),
        false_alerts_per_benign_day=false_day,
        false_alerts_learning_day=false_learning,
        false_alerts_by_detector=dict(sorted(by_detector.items())),
        false_alerts_by_hard_negative=dict(sorted(by_kind.items())),
    )
