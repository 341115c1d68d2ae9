"""Playbooks: a YAML schema (pydantic), loading that names file, line and field, and trigger matching (pure).

A playbook is a trigger (incident tactic, technique, asset role or zone, severity, detector, data
category) and ordered steps. A bad file never loads: :class:`PlaybookError` names the file, the line
(from PyYAML's node marks, so no extra YAML library is needed) and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from healthsec.model import Severity

ACTIONS = ("block_address", "disable_account", "isolate_host", "quarantine_dicom_ae", "quarantine_hl7_sender")
TARGETS = (
    "external_ip",
    "actor_ip",
    "actor_host",
    "actor_account",
    "target_account",
    "ae_title",
    "device",
    "hl7_sender",
)
_DURATION = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class PlaybookError(ValueError):
    """A playbook file was refused: ``file:line: field: reason``."""

    def __init__(self, file: str, line: int | None, where: str, reason: str) -> None:
        self.file, self.line, self.field, self.reason = file, line, where, reason
        super().__init__(f"{file}:{line if line is not None else '?'}: {where or '(file)'}: {reason}")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"duration {text!r}: use a number and m, h or d (e.g. 30m, 4h, 2d)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Strict):
    """All stated fields must match (any listed value of a field matches); an empty field matches all."""

    event: Literal["incident", "case_updated"] = "incident"
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    asset_roles: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "low"
    detectors: tuple[str, ...] = ()
    data_categories: tuple[str, ...] = ()


class OpenCase(_Strict):
    kind: Literal["open_case"]
    title: str | None = None
    data_categories: tuple[str, ...] = ()
    significant: bool = False
    start_clocks: bool = True


class UpdateCase(_Strict):
    kind: Literal["update_case"]
    status: Literal["open", "investigating", "contained"] | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None


class AddTask(_Strict):
    kind: Literal["add_task"]
    title: str = Field(min_length=1)
    owner: str | None = None
    due_in: str | None = None

    @field_validator("due_in")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v


class Notify(_Strict):
    kind: Literal["notify"]
    event: str = Field(min_length=1, pattern=r"^[a-z0-9_.-]+$")


class Enrich(_Strict):
    kind: Literal["enrich"]
    source: Literal["attack", "vulns", "intel"]


class Share(_Strict):
    kind: Literal["share"]
    partner: str = Field(min_length=1)
    tlp: Literal["clear", "green", "amber", "amber+strict"] = "amber"


class Contain(_Strict):
    kind: Literal["contain"]
    action: Literal[ACTIONS]  # type: ignore[valid-type]
    target: Literal[TARGETS]  # type: ignore[valid-type]
    approval: Literal["required", "auto"] = "required"


Step = Annotated[
    OpenCase | UpdateCase | AddTask | Notify | Enrich | Share | Contain, Field(discriminator="kind")
]
_CASE_STEPS = {"update_case", "add_task", "notify", "enrich", "share", "contain"}


class Playbook(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_-]+$")
    version: int = Field(default=1, ge=1)
    description: str = ""
    trigger: Trigger
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _case_first(self) -> Playbook:
        opened = self.trigger.event == "case_updated"
        for i, step in enumerate(self.steps):
            if step.kind == "open_case":
                opened = True
            elif step.kind in _CASE_STEPS and not opened:
                raise _StepError(i, f"step {step.kind} needs a case: put an open_case step before it")
        return self

    def matches(self, ctx: IncidentContext) -> bool:
        return matches(self.trigger, ctx)


class _StepError(ValueError):
    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


@dataclass(frozen=True)
class IncidentContext:
    """What a trigger can look at: the incident (or case) and what the service learnt around it."""

    subject: str
    severity: Severity
    tactics: frozenset[str] = frozenset()
    techniques: frozenset[str] = frozenset()
    asset_roles: frozenset[str] = frozenset()
    zones: frozenset[str] = frozenset()
    detectors: frozenset[str] = frozenset()
    data_categories: frozenset[str] = frozenset()
    entities: tuple[tuple[str, str, str], ...] = ()  # (kind, value, role)
    extra: dict[str, Any] = field(default_factory=dict)


def _any(wanted: Sequence[str], have: Iterable[str]) -> bool:
    return not wanted or bool(set(wanted) & set(have))


def matches(t: Trigger, ctx: IncidentContext) -> bool:
    """True when every stated field of the trigger matches; a technique matches its sub-techniques."""
    if ctx.severity < Severity.parse(t.min_severity):
        return False
    techniques_ok = not t.techniques or any(
        have == want or have.startswith(want + ".") for want in t.techniques for have in ctx.techniques
    )
    return (
        techniques_ok
        and _any(t.tactics, ctx.tactics)
        and _any(t.asset_roles, ctx.asset_roles)
        and _any(t.zones, ctx.zones)
        and _any(t.detectors, ctx.detectors)
        and _any(t.data_categories, ctx.data_categories)
    )


# --- loading with line numbers -------------------------------------------------------------------
def _node_at(root: yaml.Node, loc: Sequence[Any]) -> tuple[yaml.Node, list[str]]:
    """The deepest YAML node along a pydantic error location, and the path of names that exist."""
    node, path = root, []
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None:
                if part in {"open_case", "update_case", "add_task", "notify", "enrich", "share", "contain"}:
                    continue  # pydantic's union tag, not a key of the file
                path.append(part)
                break
            node = child
            path.append(part)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            path.append(str(part))
        else:
            continue
    return node, path


def load_text(text: str, file: str = "<text>") -> Playbook:
    """Parse and validate one playbook; any problem raises :class:`PlaybookError` (file, line, field)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PlaybookError(file, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None or not isinstance(data, dict):
        raise PlaybookError(file, 1, "", "a playbook is a mapping with name, trigger and steps")
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        inner = err.get("ctx", {}).get("error")
        loc: list[Any] = list(err["loc"])
        if isinstance(inner, _StepError):
            loc = ["steps", inner.index]
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("kind")
        node, path = _node_at(root, loc)
        msg = str(inner) if inner is not None else err["msg"]
        raise PlaybookError(file, node.start_mark.line + 1, ".".join(path), msg) from None


def load_file(path: Path) -> Playbook:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(str(path), None, "", f"cannot read: {exc}") from None
    return load_text(text, str(path))


def builtin() -> list[Playbook]:
    """The playbooks shipped inside the package (healthsec/respond/playbooks/*.yaml)."""
    folder = resources.files("healthsec.respond") / "playbooks"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            out.append(
                load_text(entry.read_text(encoding="utf-8"), f"healthsec/respond/playbooks/{entry.name}")
            )
    return out


def load_all(dirs: Iterable[Path] = (), *, include_builtin: bool = True) -> list[Playbook]:
    """Built-in and extra playbooks; one bad file refuses the whole set; a duplicate name is an error."""
    books = builtin() if include_builtin else []
    for d in dirs:
        for p in sorted(Path(d).glob("*.y*ml")):
            books.append(load_file(p))
    seen: dict[str, int] = {}
    for b in books:
        seen[b.name] = seen.get(b.name, 0) + 1
    dup = [n for n, c in seen.items() if c > 1]
    if dup:
        raise PlaybookError(
            ", ".join(str(d) for d in dirs) or "<builtin>", None, "name", f"duplicate playbook {dup[0]!r}"
        )
    return books
