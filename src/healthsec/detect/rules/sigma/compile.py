"""Compile pySigma rules once into small match trees (atoms grouped per field) for batch evaluation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from healthsec.detect.rules.sigma.logsource import Target, targets_for

KEYWORD_FIELD = "\x00keywords"  # pseudo-field: every value of the record, for keyword searches


class Unsupported(ValueError):
    """A rule uses something the engine does not evaluate; the message names it."""


@dataclass(frozen=True)
class Atom:
    """One test on one field: ``kind`` is eq/contains/startswith/endswith/glob/re/cidr/cmp/exists/null/...

    ``values`` are lower-cased unless ``cased``; for ``re`` they are (pattern, flags) pairs, for ``cmp``
    (operator, number) pairs.  Several values of one kind on one field are OR-ed.
    """

    field: str
    kind: str
    values: tuple[object, ...]
    cased: bool = False


@dataclass(frozen=True)
class Node:
    """Boolean tree: op is 'and', 'or', 'not' (children) or 'atom' (atoms OR-ed, all on one field)."""

    op: str
    children: tuple[Node, ...] = ()
    atoms: tuple[Atom, ...] = ()


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to evaluate: metadata, where it applies, and its condition tree(s) OR-ed."""

    id: str
    title: str
    level: str | None
    status: str | None
    tags: tuple[str, ...]
    techniques: tuple[str, ...]
    tactics: tuple[str, ...]
    targets: tuple[Target, ...]
    root: Node
    fields: frozenset[str]
    description: str | None = None
    references: tuple[str, ...] = field(default=())


TACTICS = {
    "reconnaissance": "TA0043",
    "resource_development": "TA0042",
    "initial_access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege_escalation": "TA0004",
    "defense_evasion": "TA0005",
    "credential_access": "TA0006",
    "discovery": "TA0007",
    # ATT&CK v19 (which SigmaHQ already uses): Defense Evasion became Stealth (same id) and
    # Defense Impairment split off (TA0112, per the MISP ATT&CK galaxy in ../shared/data)
    "stealth": "TA0005",
    "defense_impairment": "TA0112",
    "lateral_movement": "TA0008",
    "collection": "TA0009",
    "command_and_control": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")


def attack_tags(tags: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ATT&CK technique ids and tactic ids from ``attack.*`` tags."""
    techniques: list[str] = []
    tactics: list[str] = []
    for tag in tags:
        ns, _, name = tag.partition(".")
        if ns.lower() != "attack":
            continue
        low = name.lower().replace("-", "_")
        if _TECHNIQUE.match(low):
            techniques.append(low.upper())
        elif low in TACTICS:
            tactics.append(TACTICS[low])
    return tuple(dict.fromkeys(techniques)), tuple(dict.fromkeys(tactics))


def _string_atom(fld: str, value: SigmaString, *, keyword: bool = False) -> Atom:
    """``keyword``: a value without a field, searched anywhere in the record as pySigma's backends do
    (SQLite: ``LIKE '%mimi%katz%'``): its wildcards match within the text and never anchor it to the
    start, the end or the whole of the record."""
    parts = list(value.s)
    cased = isinstance(value, SigmaCasedString)
    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    if keyword:
        head = [] if parts and parts[0] is multi else [multi]
        parts = head + parts + ([] if parts and parts[-1] is multi else [multi])
    if any(isinstance(p, Placeholder) for p in parts):
        raise Unsupported(f"placeholder in value of field {fld!r}")

    def norm(text: str) -> str:
        return text if cased else text.lower()

    texts = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if isinstance(p, SpecialChars)]
    if not specials:
        return Atom(fld, "eq", (norm("".join(texts)),), cased)
    if single not in specials and len(texts) == 1:
        if parts == [multi, texts[0], multi]:
            return Atom(fld, "contains", (norm(texts[0]),), cased)
        if parts == [texts[0], multi]:
            return Atom(fld, "startswith", (norm(texts[0]),), cased)
        if parts == [multi, texts[0]]:
            return Atom(fld, "endswith", (norm(texts[0]),), cased)
    if parts == [multi] or (specials and not texts and single not in specials):
        return Atom(fld, "notnull", (), cased)
    pattern = "".join(
        re.escape(norm(p)) if isinstance(p, str) else ".*" if p is multi else "." for p in parts
    )
    literals = tuple(norm(p) for p in texts if p)
    return Atom(fld, "glob", ((pattern, literals),), cased)


def value_atoms(fld: str | None, value: SigmaType) -> list[Atom]:
    """The atom(s) for one field/value pair (an expansion such as windash gives several, OR-ed)."""
    key = KEYWORD_FIELD if fld is None else fld
    if isinstance(value, SigmaExpansion):
        return [a for v in value.values for a in value_atoms(fld, v)]
    if isinstance(value, SigmaString):
        return [_string_atom(key, value, keyword=fld is None)]
    if isinstance(value, SigmaBool):
        return [Atom(key, "eq", (str(value.boolean).lower(),))]
    if isinstance(value, SigmaNumber):
        return [Atom(key, "eq", (str(value.number).lower(),))]
    if isinstance(value, SigmaNull):
        return [Atom(key, "null", ())]
    if isinstance(value, SigmaExists):
        return [Atom(key, "exists" if value.exists else "null", ())]
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for f in value.flags:
            flags |= {
                SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
                SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
                SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
            }.get(f, 0)
        pattern = value.regexp.to_plain() if isinstance(value.regexp, SigmaString) else str(value.regexp)
        try:
            re.compile(pattern, flags)
        except re.error as exc:
            raise Unsupported(f"regular expression for {fld!r} does not compile: {exc}") from None
        return [Atom(key, "re", ((pattern, flags),), True)]
    if isinstance(value, SigmaCIDRExpression):
        return [Atom(key, "cidr", (str(value.network),), True)]
    if isinstance(value, SigmaCompareExpression):
        return [Atom(key, "cmp", ((value.op.name, float(value.number.number)),), True)]
    if isinstance(value, SigmaFieldReference):
        kind = "fieldref"
        if value.starts_with:
            kind = "fieldref_startswith"
        elif value.ends_with:
            kind = "fieldref_endswith"
        return [Atom(key, kind, (value.field,))]
    raise Unsupported(f"value type {type(value).__name__} on field {fld!r}")


def _merge(atoms: list[Atom]) -> tuple[Atom, ...]:
    """Group OR-ed atoms of one field and kind into one atom with many values (one vectorised test)."""
    merged: dict[tuple[str, str, bool], list[object]] = {}
    for a in atoms:
        merged.setdefault((a.field, a.kind, a.cased), []).extend(a.values)
    return tuple(Atom(f, k, tuple(dict.fromkeys(v)), c) for (f, k, c), v in merged.items())


def convert(item: object) -> Node:
    """pySigma's postprocessed condition tree to our Node tree."""
    if isinstance(item, ConditionFieldEqualsValueExpression):
        return Node("atom", atoms=_merge(value_atoms(item.field, item.value)))
    if isinstance(item, ConditionValueExpression):
        return Node("atom", atoms=_merge(value_atoms(None, item.value)))
    if isinstance(item, ConditionNOT):
        return Node("not", (convert(item.args[0]),))
    if isinstance(item, (ConditionAND, ConditionOR)):
        children = [convert(a) for a in item.args if a is not None]
        op = "and" if isinstance(item, ConditionAND) else "or"
        if op == "or":  # OR of single-field atom leaves on the same field: fold into one leaf
            leaves = [c for c in children if c.op == "atom" and len({a.field for a in c.atoms}) == 1]
            fields = {c.atoms[0].field for c in leaves}
            if len(leaves) == len(children) and len(fields) == 1:
                return Node("atom", atoms=_merge([a for c in leaves for a in c.atoms]))
        return Node(op, tuple(children))
    if isinstance(item, ConditionItem):
        raise Unsupported(f"condition element {type(item).__name__}")
    raise Unsupported(f"condition element {type(item).__name__}")


def contains_patterns(node: Node, out: dict[tuple[str, bool], set[str]]) -> None:
    """Collect every 'contains' pattern per (field, cased), for the shared substring index."""
    for a in node.atoms:
        if a.kind == "contains":
            out.setdefault((a.field, a.cased), set()).update(str(v) for v in a.values)
    for c in node.children:
        contains_patterns(c, out)


def _fields(node: Node, out: set[str]) -> None:
    for a in node.atoms:
        out.add(a.field)
        if a.kind.startswith("fieldref"):
            out.update(str(v) for v in a.values)
    for c in node.children:
        _fields(c, out)


def negated_fields(node: Node, out: set[str], negated: bool = False) -> None:
    """Fields tested inside a ``not`` (the rule's filters)."""
    negated = negated or node.op == "not"
    if negated:
        out.update(a.field for a in node.atoms)
    for c in node.children:
        negated_fields(c, out, negated)


def compile_rule(rule: SigmaRule) -> CompiledRule:
    """Compile one parsed rule; raise Unsupported (or the logsource error) with the reason."""
    targets = targets_for(rule.logsource.product, rule.logsource.category, rule.logsource.service)
    trees = []
    for cond in rule.detection.parsed_condition:
        parsed = cond.parsed
        if parsed is None:
            raise Unsupported("empty condition")
        trees.append(convert(parsed))
    root = trees[0] if len(trees) == 1 else Node("or", tuple(trees))
    used: set[str] = set()
    _fields(root, used)
    negated: set[str] = set()
    negated_fields(root, negated)
    targets = tuple(t for t in targets if t.usable_by(frozenset(used), frozenset(negated)))
    if not targets:
        raise Unsupported("every log this rule's category maps to lacks a field the rule filters on")
    tags = [str(t) for t in (rule.tags or [])]
    techniques, tactics = attack_tags(tags)
    level = rule.level.name.lower() if rule.level is not None else None
    status = rule.status.name.lower() if rule.status is not None else None
    return CompiledRule(
        id=str(rule.id) if rule.id else rule.title,
        title=rule.title,
        level=level,
        status=status,
        tags=tuple(tags),
        techniques=techniques,
        tactics=tactics,
        targets=targets,
        root=root,
        fields=frozenset(used),
        description=rule.description,
        references=tuple(str(r) for r in (rule.references or [])),
    )
