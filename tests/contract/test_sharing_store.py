"""Contract tests for the sharing repositories, run over SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

import pytest

from healthsec.store import Store
from healthsec.store.sharing import Sharing, hash_secret, verify_secret


def _ind(n: int, modified: str = "2026-01-01T00:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-{n:012d}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": modified,
        "pattern": f"[ipv4-addr:value = '10.0.0.{n % 250}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        **extra,
    }


def test_collections_are_per_org_and_found_by_alias(store: Store) -> None:
    sh = Sharing.of(store)
    c = sh.collections.create("Indicators", alias="indicators", description="ours")
    assert sh.collections.get("indicators") == c
    assert sh.collections.get(c["id"])["title"] == "Indicators"  # type: ignore[index]
    assert [x["id"] for x in sh.collections.list()] == [c["id"]]
    other = Sharing.of(store.for_org(store.org + "-other"))
    assert other.collections.list() == []
    assert other.collections.get("indicators") is None
    assert sh.collections.ensure("indicators", "ignored")["id"] == c["id"]


def test_objects_dedupe_by_id_and_modified_and_page_in_order(store: Store) -> None:
    sh = Sharing.of(store)
    cid = sh.collections.create("c")["id"]
    first = sh.objects.add_many(cid, [_ind(i) for i in range(7)], source="partner-a")
    assert len(first.added) == 7
    assert first.duplicates == []
    again = sh.objects.add_many(cid, [_ind(3), _ind(3, "2026-02-01T00:00:00.000Z", confidence=80)])
    assert again.duplicates == [(_ind(3)["id"], "2026-01-01T00:00:00.000Z")]
    assert again.added == [(_ind(3)["id"], "2026-02-01T00:00:00.000Z")]
    assert sh.objects.count(cid) == 8

    # default: only the last version of each object; pages follow each other without gaps
    p1 = sh.objects.page(cid, limit=4)
    assert p1.more
    assert len(p1.items) == 4
    p2 = sh.objects.page(cid, limit=4, after_seq=p1.items[-1].seq)
    assert not p2.more
    ids = [o.id for o in p1.items + p2.items]
    assert len(ids) == 7
    assert len(set(ids)) == 7
    newest = [o for o in p1.items + p2.items if o.id == _ind(3)["id"]]
    assert newest[0].modified == "2026-02-01T00:00:00.000Z"
    assert newest[0].confidence == 80
    assert newest[0].source is None
    assert p1.items[0].source == "partner-a"

    every = sh.objects.page(cid, versions="all", limit=100).items
    assert len(every) == 8
    firsts = sh.objects.page(cid, versions="first", ids=[_ind(3)["id"]]).items
    assert [o.modified for o in firsts] == ["2026-01-01T00:00:00.000Z"]
    # date_added strictly increases, so added_after never skips a sibling
    added = [o.date_added for o in every]
    assert added == sorted(added)
    assert len(set(added)) == len(added)
    assert added[0].tzinfo is not None
    after = sh.objects.page(cid, added_after=added[4], versions="all").items
    assert [o.seq for o in after] == [o.seq for o in every[5:]]
    assert sh.objects.page(cid, types=["malware"]).items == []


def test_status_partners_rights_cursors_quarantine(store: Store) -> None:
    sh = Sharing.of(store)
    st = sh.status.create("c1", successes=[{"id": "x", "version": "v"}], failures=[])
    got = sh.status.get(st["id"])
    assert got is not None
    assert got["success_count"] == 1
    assert got["status"] == "complete"
    assert sh.status.get("nope") is None

    sh.partners.add("stmary", "St Mary Hospital", secret="s3cret-long-enough", policy={"max_tlp": "amber"})
    assert sh.partners.verify("stmary", "s3cret-long-enough")
    assert not sh.partners.verify("stmary", "wrong")
    assert not sh.partners.verify("ghost", "s3cret-long-enough")
    listed = sh.partners.list()
    assert listed[0]["name"] == "stmary"
    assert listed[0]["has_secret"] is True
    assert "password_hash" not in listed[0]
    # updating without a secret keeps the old one
    sh.partners.add("stmary", "St Mary's", url="https://taxii.example/api/")
    assert sh.partners.verify("stmary", "s3cret-long-enough")
    assert sh.partners.get("stmary")["organisation"] == "St Mary's"  # type: ignore[index]
    sh.partners.grant("stmary", "c1", read=True, write=False)
    sh.partners.grant("stmary", "c1", read=True, write=True)
    assert sh.partners.rights("stmary") == {"c1": (True, True)}

    assert sh.cursors.get("stmary", "c1") is None
    sh.cursors.record("stmary", "c1", added_after="2026-01-01T00:00:00.000001Z", pulled=5, error=None)
    sh.cursors.record("stmary", "c1", added_after=None, pulled=0, error="connection refused")
    cur = sh.cursors.get("stmary", "c1")
    assert cur is not None
    assert cur["added_after"] == "2026-01-01T00:00:00.000001Z"
    assert cur["pulled"] == 5
    assert cur["last_error"] == "connection refused"
    assert cur["last_success"] is not None

    qid = sh.quarantine.add(b'{"type": "bundle"', "not JSON", source="stmary")
    q = sh.quarantine.list()
    assert q[0]["id"] == qid
    assert q[0]["reason"] == "not JSON"
    assert q[0]["size"] == 17


def test_add_many_is_one_transaction(store: Store) -> None:
    sh = Sharing.of(store)
    cid = sh.collections.create("c")["id"]
    bad = {"type": "indicator", "modified": "2026-01-01T00:00:00.000Z"}  # no id: refused before any write
    with pytest.raises(KeyError):
        sh.objects.add_many(cid, [_ind(1), bad])
    assert sh.objects.count(cid) == 0
    # objects and their status resource are written in the caller's transaction: a failure after the
    # insert (here, on purpose) leaves neither behind
    added: list[int] = []

    def crash_after_insert() -> None:
        with sh.engine.begin() as conn:
            res = sh.objects.add_many(cid, [_ind(i) for i in range(600)], conn=conn)
            added.append(len(res.added))
            sh.status.create(cid, successes=[{"id": "x"}], failures=[], conn=conn)
            raise RuntimeError("crash after the insert")

    with pytest.raises(RuntimeError):
        crash_after_insert()
    assert added == [600]
    assert sh.objects.count(cid) == 0
    assert sh.objects.add_many(cid, [_ind(1)]).added == [(_ind(1)["id"], "2026-01-01T00:00:00.000Z")]


def test_secret_hash_is_salted() -> None:
    a, b = hash_secret("same"), hash_secret("same")
    assert a != b
    assert verify_secret("same", a)
    assert verify_secret("same", b)
    assert not verify_secret("same", None)


def test_concurrent_writers_never_leave_a_gap_behind_a_reader(store: Store) -> None:
    """Pages read while two writers add to one collection see every object exactly once."""
    import threading

    sh = Sharing.of(store)
    cid = sh.collections.create("c")["id"]

    def writer(base: int) -> None:
        for k in range(10):
            sh.objects.add_many(cid, [_ind(base + 20 * k + j) for j in range(20)])

    threads = [threading.Thread(target=writer, args=(b,)) for b in (0, 100_000)]
    for th in threads:
        th.start()
    seen: list[str] = []
    after: int | None = None
    while True:
        writers_done = not any(th.is_alive() for th in threads)  # checked before reading, not after
        page = sh.objects.page(cid, limit=7, after_seq=after)
        seen += [o.id for o in page.items]
        if page.items:
            after = page.items[-1].seq
        elif writers_done:
            break
    for th in threads:
        th.join()
    assert len(seen) == len(set(seen)) == 400


def test_a_writer_that_commits_late_is_not_skipped_by_a_reader(store: Store) -> None:
    """Writer A inserts but has not committed when writer B starts: B waits, so no reader cursor passes A."""
    import threading

    sh = Sharing.of(store)
    cid = sh.collections.create("c")["id"]
    b_thread = threading.Thread(target=lambda: sh.objects.add_many(cid, [_ind(100 + i) for i in range(5)]))
    with sh.engine.begin() as conn_a:
        sh.objects.add_many(cid, [_ind(i) for i in range(5)], conn=conn_a)
        b_thread.start()
        b_thread.join(timeout=1.0)
        first = sh.objects.page(cid, limit=100)  # a partner reads while A is still open
    b_thread.join()
    cursor = first.items[-1].seq if first.items else None
    rest = sh.objects.page(cid, limit=100, after_seq=cursor)
    ids = {o.id for o in first.items + rest.items}
    assert len(ids) == 10


def test_versions_compare_as_times_and_status_belongs_to_its_submitter(store: Store) -> None:
    sh = Sharing.of(store)
    cid = sh.collections.create("versions")["id"]
    # as text "...00Z" sorts after "...00.500Z"; as times the .5 s version is the later one
    res = sh.objects.add_many(cid, [_ind(1, "2026-01-01T00:00:00.500Z"), _ind(1, "2026-01-01T00:00:00Z")])
    assert len(res.added) == 2
    assert sh.objects.add_many(cid, [_ind(1, "2026-01-01T00:00:00.5Z")]).added == []  # the same time
    last = sh.objects.page(cid, versions="last").items
    assert [o.modified for o in last] == ["2026-01-01T00:00:00.500Z"]
    first = sh.objects.page(cid, versions="first").items
    assert [o.modified for o in first] == ["2026-01-01T00:00:00.000Z"]
    picked = sh.objects.page(cid, versions=("2026-01-01T00:00:00.5Z",)).items
    assert [o.modified for o in picked] == ["2026-01-01T00:00:00.500Z"]
    status = sh.status.create(cid, successes=[], failures=[], submitter="stmary")
    assert sh.status.get(status["id"], submitter="stmary") == status
    assert sh.status.get(status["id"], submitter="other") is None
    assert "x_healthsec_submitter" not in (sh.status.get(status["id"]) or {})
    assert sh.objects.ids(cid) == [_ind(1)["id"]]
    assert sh.objects.ids(cid, source="stmary") == []
