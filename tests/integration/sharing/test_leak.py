"""The leak test: seeded PHI and internal identifiers go through detection, analysis and every export path.

Coverage (what exists today):
- detection + analysis: the simulated hospital day (healthsec.sim) through the real Pipeline and
  detectors, correlated into incidents in a SQLite store; an analyst note with seeded PHI is added to
  one incident's summary (summaries are exported as STIX incident/report descriptions);
- STIX: ``healthsec share export --format stix`` for the community (GREEN), a named partner (AMBER)
  and an anonymous partner;
- MISP: ``healthsec share export --format misp``;
- TAXII: responses of the TAXII 2.1 server read with the OASIS taxii2-client, both for a collection
  holding cleared (published) objects and for one holding raw exported objects;
- reports: the incident report text made shareable by ``outbound_text`` (the HTML report of
  ``healthsec demo`` is an internal document, not a sharing path).
- push: ``taxii_client.push`` of a collection to a partner's TAXII server (a second server), checked in
  what the partner stored.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from taxii2client.v21 import Collection, as_pages
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.config import load_settings
from healthsec.ingest import IterableSource
from healthsec.model import LogRecord
from healthsec.pipeline import Pipeline, build_engine
from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.respond.report import render_report
from healthsec.share.known import known_from_store
from healthsec.share.outbound import known_identifiers, outbound, outbound_text
from healthsec.share.policy import TLP, PartnerPolicy, policy_to_dict
from healthsec.share.stix import export_bundle, validate_bundle
from healthsec.share.taxii_client import push
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import create_taxii_app
from healthsec.sim import simulate
from healthsec.store import Store
from healthsec.store.sharing import Sharing

pytestmark = pytest.mark.integration

KEY_HEX = "7c" * 32
KEYS = SharingKeys.from_secret(bytes.fromhex(KEY_HEX))
SECRET = "leak-test partner secret"
B_ORG = "identity--22222222-2222-4222-8222-222222222222"
C_ORG = "identity--33333333-3333-4333-8333-333333333333"
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
# Seeded PHI: an analyst note on an incident, and a log line on a host that is attacked.
PHI = {
    "name": "Johnathan Quibblesworth",
    "surname": "Quibblesworth",
    "mrn": "QX-99812",
    "dob": "12/03/1961",
    "phone": "7946 0123",
    "email": "j.quibblesworth@example.org",
    "ssn": "123-45-6789",
}
NOTE = (
    f" Analyst note: patient {PHI['name']} (MRN: {PHI['mrn']}, DOB: {PHI['dob']}) called from "
    f"+44 20 {PHI['phone']}, email {PHI['email']}, SSN {PHI['ssn']}."
)


@dataclass
class World:
    db: str
    tmp: Path
    secrets: dict[str, str]  # value -> what it is
    incidents: list[str]


def _seed_phi_in_logs(events: list, hosts: set[str]) -> list:  # type: ignore[type-arg]
    out = []
    for ev in events:
        if isinstance(ev, LogRecord) and ev.host in hosts and ev.message is None:
            ev = dataclasses.replace(
                ev, message=f"user opened chart of patient {PHI['name']} MRN {PHI['mrn']}"
            )
        out.append(ev)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("leak")
    db = str(tmp / "hospital.db")
    store = Store.open(db, "local")
    baseline = simulate(7, day=0, campaigns=())
    day = simulate(7, day=1, hospital=baseline.hospital)
    hospital = day.hospital
    store.assets.upsert_many(day.assets)
    pipeline = Pipeline(build_engine(store, load_settings(), assets=day.assets), store, resume=False)
    events = _seed_phi_in_logs(day.events, {a.name for a in day.assets})
    both = sorted([*baseline.events, *events], key=lambda e: (e.ts, e.id))  # the benign day is learnt
    result = pipeline.run(IterableSource("sim", both))
    assert result.incidents, "the simulated attack day must produce incidents"
    first = result.incidents[0]
    store.incidents.upsert_many([dataclasses.replace(first, summary=(first.summary or "") + NOTE)])
    secrets: dict[str, str] = {v: f"PHI {k}" for k, v in PHI.items()}
    for a in day.assets:
        secrets[a.name] = "asset name"
        if a.ip and any(ipaddress.ip_address(a.ip) in n for n in PRIVATE):
            secrets[a.ip] = "internal IP"
        if a.mac:
            secrets[a.mac] = "MAC"
    for s in hospital.staff:
        secrets[s.user] = "user"
        secrets[s.workstation] = "workstation"
    for p in hospital.patients:
        secrets[p.patient_id] = "patient id"
    sh = Sharing.of(store)
    sh.partners.add(
        "hospital-b", B_ORG, secret=SECRET, policy=policy_to_dict(PartnerPolicy("b", B_ORG, TLP.AMBER))
    )
    anon = PartnerPolicy("c", C_ORG, TLP.AMBER, anonymous=True)
    sh.partners.add("hospital-c", C_ORG, policy=policy_to_dict(anon))
    store.close()
    return World(db, tmp, secrets, [i.id for i in result.incidents])


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = []
    for value, what in secrets.items():
        if re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w-]|\.\d)", text, re.IGNORECASE):
            found.append(f"{what}: {value}")
    return sorted(found)


def _export(world: World, name: str, *args: str) -> str:
    out = world.tmp / name
    result = CliRunner().invoke(
        app,
        ["share", "export", "--db", world.db, *args, "--to", str(out)],
        env={"HEALTHSEC_SHARING_KEY": KEY_HEX},
    )
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def test_the_pipeline_output_does_carry_the_seeded_identifiers(world: World) -> None:
    """Guard against a vacuous pass: without the exit door the identifiers and the PHI are there."""
    store = Store.open(world.db, "local")
    incidents = store.incidents.list(limit=100)
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid))]
    raw = json.dumps(export_bundle(incidents, alerts, producer="General Hospital"))
    store.close()
    leaked = _leaks(raw, world.secrets)
    kinds = {x.split(":")[0] for x in leaked}
    assert {"asset name", "internal IP", "PHI name", "PHI mrn"} <= kinds, leaked


@pytest.mark.parametrize(
    ("label", "args"),
    [
        ("stix-community-green", ["--tlp", "green"]),
        ("stix-partner-amber", ["--tlp", "amber", "--partner", "hospital-b"]),
        ("stix-anonymous", ["--tlp", "amber", "--partner", "hospital-c"]),
        ("misp-partner", ["--tlp", "amber", "--partner", "hospital-b", "--format", "misp"]),
    ],
)
def test_exports_leak_nothing(world: World, label: str, args: list[str]) -> None:
    text = _export(world, f"{label}.json", *args)
    assert len(text) > 2000  # something real was shared
    assert _leaks(text, world.secrets) == []
    if label.startswith("stix"):
        assert validate_bundle(json.loads(text)) == []


def _taxii_texts(world: World) -> tuple[str, str]:
    store = Store.open(world.db, "local")
    sh = Sharing.of(store)
    incidents = store.incidents.list(limit=100)
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid))]
    bundle = export_bundle(incidents, alerts, producer="General Hospital", tlp=TLP.GREEN)
    known = known_from_store(store)
    published = sh.collections.ensure("published", "Published (cleared) indicators")["id"]
    raw = sh.collections.ensure("raw", "Raw export, cleared only when served")["id"]
    community = PartnerPolicy("community", "identity--5e9b1c0a-7f3d-5c1e-9a53-6c0f2b8e4d17", TLP.GREEN)
    sh.objects.add_many(published, list(outbound(bundle["objects"], community, KEYS, known=known).objects))
    sh.objects.add_many(raw, bundle["objects"])
    for cid in (published, raw):
        sh.partners.grant("hospital-b", cid, read=True, write=False)
    texts = []
    with BackgroundServer(create_taxii_app(lambda: store, keys=KEYS)) as url:
        for cid in (published, raw):
            coll = Collection(f"{url}/taxii2/api/collections/{cid}/", user="hospital-b", password=SECRET)
            pages = [json.dumps(env) for env in as_pages(coll.get_objects, per_request=100)]
            assert len(pages) > 1, f"collection {cid}: expected several pages"
            texts.append("".join(pages))
    texts.append(_pushed_text(world, sh))
    store.close()
    return texts[0], texts[1], texts[2]


def _pushed_text(world: World, sh: Sharing) -> str:
    """``share push`` of the raw collection to a partner's TAXII server; what the partner stored."""
    partner_store = Store.open(str(world.tmp / "partner.db"), "stmary")
    theirs = Sharing.of(partner_store)
    inbox = theirs.collections.create("Inbox")["id"]
    theirs.partners.add("general", "General Hospital", secret=SECRET, policy={"max_tlp": "amber"})
    theirs.partners.grant("general", inbox, read=True, write=True)
    with BackgroundServer(create_taxii_app(lambda: partner_store, keys=KEYS)) as url:
        sh.partners.add(
            "hospital-p",
            "St Mary",
            url=f"{url}/taxii2/api/",
            remote_user="general",
            push_collection=inbox,
            policy={"max_tlp": "amber"},
        )
        result = push(sh, "hospital-p", secret=SECRET, keys=KEYS, collection="raw")
    assert result.error is None, result.error
    assert result.objects > 20
    text = "".join(o.body for o in theirs.objects.page(inbox, limit=10_000).items)
    partner_store.close()
    return text


@pytest.fixture(scope="module")
def taxii_texts(world: World) -> tuple[str, str, str]:
    return _taxii_texts(world)


def test_taxii_responses_leak_nothing(world: World, taxii_texts: tuple[str, str, str]) -> None:
    published, raw, _ = taxii_texts
    assert _leaks(published, world.secrets) == []
    assert _leaks(raw, world.secrets) == []  # the server passes known identifiers to the door


def test_push_leaks_nothing(world: World, taxii_texts: tuple[str, str, str]) -> None:
    """What the partner stored after ``push`` of our raw collection (push passes known identifiers too)."""
    assert _leaks(taxii_texts[2], world.secrets) == []


def test_shared_report_text_leaks_nothing(world: World) -> None:
    store = Store.open(world.db, "local")
    incidents = store.incidents.list(limit=100)
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid))]
    known = known_identifiers(incidents, alerts)
    known.setdefault("host", set()).update(a.name for a in store.assets.list())
    store.close()
    html = render_report({"seed": 7, "campaigns": []}, incidents, alerts)
    assert _leaks(html, world.secrets)  # the internal report names hosts and patients, as it should
    shared = outbound_text(html, KEYS, known=known)
    assert _leaks(shared, world.secrets) == []
