"""Dirty links and their leases, on SQLite and PostgreSQL: marking coalesces, claiming leases
each link to one worker, releasing keeps a change that arrived during the sync."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from syncd.clock import utcnow
from syncd.runtime.dirty import (
    backlog,
    claim,
    mark_dirty,
    record_change,
    release,
    release_dead,
    renew,
)
from syncd.store.db import make_engine, session_scope
from syncd.store.models import Conflict, Link
from tests.runtime.conftest import CONNECTOR, add_links, dirty_ids, link_row

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def set_owner(engine: Engine, link_id: int, owner: str, until: datetime) -> None:
    """A lease as some process left it."""
    with session_scope(engine) as session:
        session.execute(
            update(Link)
            .where(col(Link.id) == link_id)
            .values(lease_owner=owner, lease_until=until, dirty=True, dirty_since=T0)
        )


def test_mark_dirty_coalesces(store: Engine) -> None:
    """Many marks of one account leave one dirty link, claimed once."""
    first, _second = add_links(store, 2)
    assert mark_dirty(store, now=at(1), wix_account_id="w0") == 1
    assert mark_dirty(store, now=at(2), wix_account_id="w0") == 1
    assert mark_dirty(store, now=at(3), connector=CONNECTOR, external_id="e0") == 1
    assert dirty_ids(store) == {first}
    assert backlog(store)[0] == 1
    assert claim(store, "a:1", now=at(4), limit=10, lease=LEASE) == [first]
    assert claim(store, "b:1", now=at(4), limit=10, lease=LEASE) == []


def test_mark_dirty_names_links_not_accounts(store: Engine) -> None:
    """An unlinked account marks nothing (0); a Wix account linked in two connectors marks both;
    an external id marks only its own connector's link."""
    (shop,) = add_links(store, 1)
    (crm,) = add_links(store, 1, connector="crm")
    assert mark_dirty(store, now=T0, wix_account_id="nobody") == 0
    assert mark_dirty(store, now=T0, connector="crm", external_id="e0") == 1
    assert dirty_ids(store) == {crm}
    assert mark_dirty(store, now=T0, wix_account_id="w0") == 2
    assert dirty_ids(store) == {shop, crm}
    with pytest.raises(ValueError):
        mark_dirty(store, now=T0, connector=CONNECTOR)


def test_claim_takes_unleased_dirty_links_oldest_first(store: Engine) -> None:
    """Claims lease only dirty links nobody holds, the longest-waiting first, at most `limit`."""
    ids = add_links(store, 5)
    for account, second in (("w3", 3), ("w1", 1), ("w2", 2), ("w4", 4)):
        mark_dirty(store, now=at(second), wix_account_id=account)
    assert claim(store, "a:1", now=at(5), limit=2, lease=LEASE) == [ids[1], ids[2]]
    held = link_row(store, ids[1])
    assert (held.lease_owner, held.lease_until) == ("a:1", at(5) + LEASE)
    assert claim(store, "b:1", now=at(6), limit=1, lease=LEASE) == [ids[3]]
    assert claim(store, "b:1", now=at(6), limit=5, lease=LEASE) == [ids[4]]
    assert claim(store, "c:1", now=at(6), limit=5, lease=LEASE) == []
    assert link_row(store, ids[0]).lease_owner is None  # never dirty, never claimed


def test_claim_for_one_connector(store: Engine) -> None:
    """A claim scoped to a connector leaves the other connectors' dirty links alone."""
    (shop,) = add_links(store, 1)
    (crm,) = add_links(store, 1, connector="crm")
    mark_dirty(store, now=T0, wix_account_id="w0")
    assert claim(store, "a:1", now=at(1), limit=5, lease=LEASE, connector="crm") == [crm]
    assert claim(store, "a:1", now=at(1), limit=5, lease=LEASE) == [shop]


def test_expired_lease_can_be_claimed_again(store: Engine) -> None:
    """A lease holds until it ends; after that another worker may claim the link."""
    (link,) = add_links(store, 1)
    mark_dirty(store, now=T0, wix_account_id="w0")
    assert claim(store, "a:1", now=at(1), limit=1, lease=LEASE) == [link]
    assert claim(store, "b:1", now=at(6), limit=1, lease=LEASE) == []
    assert claim(store, "b:1", now=at(11), limit=1, lease=LEASE) == []  # ends at, not before
    assert claim(store, "b:1", now=at(11.5), limit=1, lease=LEASE) == [link]
    assert link_row(store, link).lease_owner == "b:1"


def test_release_after_sync_cleans_the_link(store: Engine) -> None:
    """A synced link with no change since its claim is clean and unleased."""
    (link,) = add_links(store, 1)
    mark_dirty(store, now=T0, wix_account_id="w0")
    claim(store, "a:1", now=at(1), limit=1, lease=LEASE)
    release(store, link, "a:1", claimed_at=at(1), synced=True)
    row = link_row(store, link)
    assert (row.dirty, row.dirty_since, row.lease_owner, row.lease_until) == (
        False,
        None,
        None,
        None,
    )
    assert backlog(store) == (0, None)


def test_change_during_sync_keeps_the_link_dirty(store: Engine) -> None:
    """A mark that arrives after the claim survives a successful release: claimable again."""
    (link,) = add_links(store, 1)
    mark_dirty(store, now=T0, wix_account_id="w0")
    claim(store, "a:1", now=at(1), limit=1, lease=LEASE)
    mark_dirty(store, now=at(2), connector=CONNECTOR, external_id="e0")
    release(store, link, "a:1", claimed_at=at(1), synced=True)
    row = link_row(store, link)
    assert row.dirty and row.lease_owner is None
    assert claim(store, "b:1", now=at(3), limit=1, lease=LEASE) == [link]


def test_failed_sync_leaves_the_link_dirty(store: Engine) -> None:
    """release(synced=False) frees the lease but keeps the link dirty."""
    (link,) = add_links(store, 1)
    mark_dirty(store, now=T0, wix_account_id="w0")
    claim(store, "a:1", now=at(1), limit=1, lease=LEASE)
    release(store, link, "a:1", claimed_at=at(1), synced=False)
    row = link_row(store, link)
    assert row.dirty and row.lease_owner is None


def test_release_by_a_worker_that_lost_its_lease(store: Engine) -> None:
    """A worker whose lease expired and was taken over does not free the new holder's lease."""
    (link,) = add_links(store, 1)
    mark_dirty(store, now=T0, wix_account_id="w0")
    claim(store, "a:1", now=at(1), limit=1, lease=LEASE)
    assert claim(store, "b:1", now=at(20), limit=1, lease=LEASE) == [link]
    release(store, link, "a:1", claimed_at=at(1), synced=False)
    row = link_row(store, link)
    assert (row.lease_owner, row.lease_until) == ("b:1", at(20) + LEASE)


def test_renew_extends_only_the_holders_leases(store: Engine) -> None:
    """renew pushes the end of the owner's leases; another owner's renew changes nothing."""
    first, second = add_links(store, 2)
    mark_dirty(store, now=T0, wix_account_id="w0")
    mark_dirty(store, now=at(0.5), wix_account_id="w1")
    claim(store, "a:1", now=at(1), limit=1, lease=LEASE)
    claim(store, "b:1", now=at(1), limit=1, lease=LEASE)
    renew(store, "a:1", [first, second], now=at(8), lease=LEASE)
    assert link_row(store, first).lease_until == at(18)
    assert link_row(store, second).lease_until == at(11)
    assert claim(store, "c:1", now=at(15), limit=5, lease=LEASE) == [second]
    renew(store, "a:1", [], now=at(16), lease=LEASE)  # nothing to renew: no statement needed
    assert link_row(store, first).lease_owner == "a:1"


def test_release_dead_frees_dead_processes_of_this_host_only(store: Engine) -> None:
    """Leases of this host's dead pids are freed; live pids' and other hosts' are kept."""
    dead, alive, elsewhere = add_links(store, 3)
    until = at(600)
    set_owner(store, dead, "host-a:101", until)
    set_owner(store, alive, "host-a:102", until)
    set_owner(store, elsewhere, "host-b:101", until)
    assert release_dead(store, "host-a", lambda pid: pid == 102) == 1
    assert link_row(store, dead).lease_owner is None
    assert link_row(store, dead).dirty  # still waiting for its sync
    assert link_row(store, alive).lease_owner == "host-a:102"
    assert link_row(store, elsewhere).lease_owner == "host-b:101"
    assert release_dead(store, "host-a", lambda pid: pid == 102) == 0


def test_release_dead_matches_the_host_name_literally(store: Engine) -> None:
    """A host name is not a LIKE pattern: `web_1` does not free the leases of host `webx1`."""
    mine, other = add_links(store, 2)
    set_owner(store, mine, "web_1:101", at(600))
    set_owner(store, other, "webx1:101", at(600))
    assert release_dead(store, "web_1", lambda pid: False) == 1
    assert link_row(store, mine).lease_owner is None
    assert link_row(store, other).lease_owner == "webx1:101"


def test_racing_claimers_never_share_a_link(store_url: str, store: Engine) -> None:
    """Two workers with their own connections, claiming until nothing is left, split the dirty
    links between them: every link is leased exactly once."""
    ids = add_links(store, 40)
    for i in range(40):
        mark_dirty(store, now=at(i), wix_account_id=f"w{i}")
    got: dict[str, list[int]] = {"a:1": [], "b:1": []}
    start = threading.Barrier(2)

    def worker(owner: str) -> None:
        engine = make_engine(store_url)
        try:
            start.wait(timeout=5)
            while taken := claim(engine, owner, now=at(100), limit=3, lease=LEASE):
                got[owner] += taken
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(owner,)) for owner in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not set(got["a:1"]) & set(got["b:1"])
    assert sorted(got["a:1"] + got["b:1"]) == ids
    for owner, taken in got.items():
        assert {link_row(store, i).lease_owner for i in taken} <= {owner}


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_interleaved_claims_skip_each_others_links(store_url: str, store: Engine) -> None:
    """PostgreSQL: when both claimers have picked their candidates before either commits, they
    picked different links, and neither waited for the other (SKIP LOCKED)."""
    ids = add_links(store, 4)
    for i in range(4):
        mark_dirty(store, now=at(i), wix_account_id=f"w{i}")
    picked = threading.Barrier(2)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        engine = make_engine(store_url)

        held: list[bool] = []

        @event.listens_for(engine, "after_cursor_execute")
        def hold(conn: object, cursor: object, statement: str, *args: object) -> None:
            if not held and statement.lstrip().upper().startswith("SELECT"):
                held.append(True)
                picked.wait(timeout=5)  # both have picked; neither has committed

        try:
            got[owner] = claim(engine, owner, now=at(10), limit=2, lease=LEASE)
        except BaseException as error:  # a broken barrier: one claimer blocked the other
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(o,)) for o in ("a:1", "b:1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(got["a:1"]) == len(got["b:1"]) == 2
    assert sorted(got["a:1"] + got["b:1"]) == ids


def test_a_merge_repoints_the_merged_accounts_link(store: Engine) -> None:
    """A contact merged into an unlinked one: its link now names the survivor, keeps its
    bases, and is dirty — in the transaction that stores the merge event."""
    [merged] = add_links(store, 1)
    with session_scope(store) as session:
        session.execute(update(Link).values(wix_base=40, ext_base=40))
    outcome = record_change(
        store,
        source=CONNECTOR,
        event_id="merge-1",
        event_type="contact.merge",
        now=utcnow(),
        connector=CONNECTOR,
        external_id="survivor",
        merged_ids=("e0",),
    )
    row = link_row(store, merged)
    assert outcome == "linked"
    assert (row.external_id, row.wix_base, row.ext_base, row.dirty) == ("survivor", 40, 40, True)


def test_a_merge_into_a_linked_account_opens_a_conflict(store: Engine) -> None:
    """Both contacts were linked: the merged-away link stays where it was, clean, with an open
    merged_away conflict; the survivor's link is marked dirty."""
    survivor, merged = add_links(store, 2)
    record_change(
        store,
        source=CONNECTOR,
        event_id="merge-2",
        event_type="contact.merge",
        now=utcnow(),
        connector=CONNECTOR,
        external_id="e0",
        merged_ids=("e1", "e0"),
    )
    assert link_row(store, merged).external_id == "e1"
    assert dirty_ids(store) == {survivor}
    with session_scope(store) as session:
        conflicts = session.execute(select(Conflict.link_id, Conflict.kind)).all()
    assert [tuple(c) for c in conflicts] == [(merged, "merged_away")]
