"""Every detector registered once: name, version, event kinds, what it needs; profiles pick what runs.

A detector needs either ``nothing`` (rules: it runs from the first event), a ``learning`` period (a
baseline fitted on the first events of an organisation, then it alerts), or a ``model`` (a promoted,
managed artefact built by ``healthsec train``). The default profile is every registered detector; the
service, the workers, the live sources, the CLI and the demo all build their detectors from here.

Pure: factories get what they need (inventory, rule set, care context, a loaded model) through a
:class:`DetectorContext` that the adapters fill; nothing here reads files or databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from healthsec.detect.base import AlertingDetector
from healthsec.model import Asset

Needs = Literal["nothing", "learning", "model"]


@dataclass(frozen=True, slots=True)
class DetectorContext:
    """What factories may use; ``None`` means the adapter has none (the detector then cannot run)."""

    assets: Sequence[Asset] = ()
    sigma_rules: Any | None = None  # healthsec.detect.rules.sigma.RuleSet
    care_context: Any | None = None  # healthsec.detect.clinical.access_context.CareContext
    phi_key: bytes | None = None  # the one patient-pseudonym key (settings.patient_key_file)
    patient_authority: str | None = None  # settings.patient_id_authority: this hospital's MRN authority
    seed: int = 0


class Unavailable(Exception):
    """A factory cannot build its detector with this context; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """One registered detector."""

    name: str
    version: str
    kinds: frozenset[str]
    needs: Needs
    description: str
    factory: Callable[[DetectorContext], AlertingDetector] | None = None
    model_kind: str | None = None  # for needs == "model": the artefact kind (flows, devices, telemetry)
    model_factory: Callable[[Any], AlertingDetector] | None = None
    default: bool = True  # in the default profile (False: registered, run only when named in `detectors`)


def _flow_iforest(ctx: DetectorContext) -> AlertingDetector:
    from healthsec.detect.ml import FlowAnomalyDetector

    return FlowAnomalyDetector(ctx.assets, seed=ctx.seed, fpr=0.001)


def _flow_beacon(ctx: DetectorContext) -> AlertingDetector:
    from healthsec.detect.ml import BeaconDetector

    return BeaconDetector(ctx.assets)


def _bruteforce(_: DetectorContext) -> AlertingDetector:
    from healthsec.detect.rules import BruteForceDetector

    return BruteForceDetector()


def _lateral(_: DetectorContext) -> AlertingDetector:
    from healthsec.detect.rules import LogonNoveltyDetector

    return LogonNoveltyDetector()


def _host_rules(_: DetectorContext) -> AlertingDetector:
    from healthsec.detect.rules import HostRuleDetector

    return HostRuleDetector()


def _external(_: DetectorContext) -> AlertingDetector:
    from healthsec.detect.rules.external import ExternalAlertDetector

    return ExternalAlertDetector()


def _sigma(ctx: DetectorContext) -> AlertingDetector:
    from healthsec.detect.rules.sigma import SigmaDetector

    if ctx.sigma_rules is None:
        raise Unavailable("no Sigma rules found (set sigma_rules in the settings)")
    return SigmaDetector(ctx.sigma_rules)


def _access(ctx: DetectorContext) -> AlertingDetector:
    """EHR access, one detector: the care-relationship check over the HL7 ADT feed (and a FHIR directory
    when loaded; what only the demo ran as ``ehr-care-relationship``) runs everywhere; the FHIR
    AuditEvent analytics (rates, hours, exports, VIP and same-surname reads) join once a care context
    and the pseudonym key are loaded."""
    from healthsec.detect.base import CombinedDetector
    from healthsec.detect.clinical.access import AccessDetector
    from healthsec.detect.clinical.baseline import CareRelationshipDetector

    parts: dict[str, AlertingDetector] = {}
    if ctx.care_context is not None and ctx.phi_key is not None:
        parts[""] = AccessDetector(ctx.care_context, ctx.phi_key, local_authority=ctx.patient_authority)
    parts["care-relationship"] = CareRelationshipDetector(
        patient_key=ctx.phi_key,
        local_authority=ctx.patient_authority,
        context=ctx.care_context,
        defer_to_context="" in parts,
    )
    combined = CombinedDetector("clinical.access", "2.0", parts)
    if "" not in parts:
        combined.detail = "care relationships from HL7 ADT only: no FHIR care context and pseudonym key"
    return combined


def _hl7(ctx: DetectorContext) -> AlertingDetector:
    from healthsec.detect.clinical.hl7 import HL7Detector

    return HL7Detector(phi_key=ctx.phi_key, local_authority=ctx.patient_authority)


def _dicom(ctx: DetectorContext) -> AlertingDetector:
    """DICOM, one detector: file and association checks per AE (``DicomDetector``) and the PACS-misuse
    part that only the demo ran as ``dicom-misuse`` (wildcard enumeration, retrievals to destinations never
    seen, unknown callers, summarised per caller and hour; alerts ``dicom.misuse``)."""
    from healthsec.detect.base import CombinedDetector
    from healthsec.detect.clinical.baseline import DicomMisuseDetector
    from healthsec.detect.clinical.dicom import DicomDetector

    parts: dict[str, AlertingDetector] = {
        "": DicomDetector(phi_key=ctx.phi_key, local_authority=ctx.patient_authority),
        "misuse": DicomMisuseDetector(),
    }
    return CombinedDetector("dicom", "2.0", parts)


def _telemetry(_: DetectorContext) -> AlertingDetector:
    """Device telemetry, one detector: the integrity checks (foreign publisher, frozen or replayed vitals,
    learnt per-device mean and spread, plausibility) and the behavioural baseline's floods, gaps and
    physiology. The baseline's learnt [min, max] ranges stay off: too tight for a day's drift (290 false
    alerts on one simulated benign day); the integrity part's 6-sd test covers values instead."""
    from healthsec.detect.base import CombinedDetector
    from healthsec.detect.clinical.baseline import TelemetryIntegrityDetector
    from healthsec.detect.clinical.telemetry import TelemetryBaselineDetector

    parts: dict[str, AlertingDetector] = {
        "": TelemetryIntegrityDetector(),  # its alerts are the detector's own: clinical.telemetry
        "baseline": TelemetryBaselineDetector(range_z=float("inf")),
    }
    return CombinedDetector("clinical.telemetry", "2.0", parts)


def _model(kind: str) -> Callable[[Any], AlertingDetector]:
    def build(loaded: Any) -> AlertingDetector:
        from healthsec.detect.ml.artefact_detectors import FACTORIES

        return FACTORIES[kind](loaded)

    return build


_LOG = frozenset({"log"})
_FLOW = frozenset({"flow"})

REGISTRY: tuple[DetectorSpec, ...] = (
    DetectorSpec(
        "sigma", "1.0", _LOG, "nothing", "SigmaHQ rules over host logs (EVTX, OTRF JSON, syslog…)", _sigma
    ),
    DetectorSpec(
        "host-rules", "1.0", _LOG, "nothing", "process rules for hospital workstations", _host_rules
    ),
    DetectorSpec(
        "auth-bruteforce", "1.0", _LOG, "nothing", "failed-logon bursts and password spraying", _bruteforce
    ),
    DetectorSpec(
        "auth-lateral-logon", "1.0", _LOG, "learning", "logons to hosts an account never used", _lateral
    ),
    DetectorSpec(
        "flow-iforest", "1.0", _FLOW, "learning", "Isolation Forest over benign flows per zone", _flow_iforest
    ),
    DetectorSpec("flow-beacon", "1.0", _FLOW, "learning", "regular outbound beacons", _flow_beacon),
    DetectorSpec(
        "clinical.access",
        "2.0",
        frozenset({"access", "clinical"}),
        "learning",
        "EHR access: reads outside care relationships (HL7 ADT, FHIR care teams), VIP and same-surname "
        "reads, per-user and per-role volumes, off-hours bulk reads, mass exports",
        _access,
    ),
    DetectorSpec(
        "hl7",
        "1.0",
        frozenset({"clinical"}),
        "learning",
        "HL7 v2: injection, malformed, floods, bulk queries, unknown senders (per-sender baselines)",
        _hl7,
    ),
    DetectorSpec(
        "dicom",
        "2.0",
        frozenset({"clinical"}),
        "learning",
        "DICOM: polyglot and malformed files, unknown AEs, wildcard queries, bulk retrievals, retrievals to "
        "destinations never seen",
        _dicom,
    ),
    DetectorSpec(
        "clinical.telemetry",
        "2.0",
        frozenset({"reading"}),
        "learning",
        "device telemetry: foreign publishers, frozen or replayed vitals, learnt per-device spread, floods, "
        "gaps and physiological plausibility",
        _telemetry,
    ),
    DetectorSpec(
        "flow-ensemble",
        "1.0",
        _FLOW,
        "model",
        "supervised + unsupervised flow ensemble (healthsec train flows)",
        model_kind="flows",
        model_factory=_model("flows"),
    ),
    DetectorSpec(
        "flow-federated",
        "1.0",
        _FLOW,
        "model",
        "the consortium's federated flow classifier, once this member promotes it (healthsec federate join)",
        model_kind="flows-federated",
        model_factory=_model("flows-federated"),
    ),
    DetectorSpec(
        "ml.device-identity",
        "1.0",
        _FLOW,
        "model",
        "passive device identification: a host whose identity changes (healthsec train devices)",
        model_kind="devices",
        model_factory=_model("devices"),
    ),
    DetectorSpec(
        "clinical.telemetry-model",
        "1.0",
        frozenset({"reading"}),
        "model",
        "supervised telemetry model (healthsec train telemetry)",
        model_kind="telemetry",
        model_factory=_model("telemetry"),
    ),
    DetectorSpec(
        "external-alerts",
        "1.0",
        _LOG,
        "nothing",
        "alerts other sensors raised (Suricata EVE, Wazuh), their ATT&CK by metadata or signature",
        _external,
    ),
)

BY_NAME: Mapping[str, DetectorSpec] = {s.name: s for s in REGISTRY}


class UnknownDetector(ValueError):
    """A configured detector name is not registered."""


@dataclass(frozen=True, slots=True)
class Profile:
    """Which registered detectors run: ``enabled`` (empty = all) minus ``disabled``."""

    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    specs: tuple[DetectorSpec, ...] = field(default=REGISTRY)

    def resolve(self) -> tuple[list[DetectorSpec], list[DetectorSpec]]:
        """(specs that run, specs disabled by configuration); an unknown name is an error naming it."""
        names = {s.name for s in self.specs}
        unknown = [n for n in (*self.enabled, *self.disabled) if n not in names]
        if unknown:
            raise UnknownDetector(
                f"unknown detector(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}"
            )
        wanted = set(self.enabled) or {s.name for s in self.specs if s.default}
        run = [s for s in self.specs if s.name in wanted and s.name not in self.disabled]
        off = [s for s in self.specs if s not in run]
        return run, off


def specs_for_kinds(kinds: Iterable[str], specs: Sequence[DetectorSpec] = REGISTRY) -> list[DetectorSpec]:
    """The registered detectors that consume any of ``kinds`` (what a CLI command over one input runs)."""
    wanted = set(kinds)
    return [s for s in specs if s.kinds & wanted]


def instantiate(ctx: DetectorContext, specs: Sequence[DetectorSpec] = REGISTRY) -> list[AlertingDetector]:
    """The default detectors of ``specs`` that need no model and are available with ``ctx`` (tests, kits)."""
    out = []
    for spec in specs:
        if spec.factory is None or spec.needs == "model" or not spec.default:
            continue
        try:
            out.append(spec.factory(ctx))
        except Unavailable:
            continue
    return out


def spec_for(
    detector: AlertingDetector, needs: Needs = "nothing", kinds: Iterable[str] | None = None
) -> DetectorSpec:
    """Register an already built detector (your own, or a test's) for one engine."""
    from healthsec.model.events import EVENT_TYPES

    return DetectorSpec(
        detector.name,
        detector.version,
        frozenset(kinds if kinds is not None else EVENT_TYPES),
        needs,
        f"{detector.name} (registered instance)",
        lambda _: detector,
    )
