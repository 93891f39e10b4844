"""Matching staged accounts: existing links, then unique emails, then unique phones — on
SQLite and on PostgreSQL (its parameters need types SQLite never asks for)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from syncd.reconcile.keys import email_key, phone_key
from syncd.reconcile.matching import match
from syncd.reconcile.staging import start_run
from syncd.store.db import open_store, session_scope
from syncd.store.models import Link, ReconcilePair, StagedAccount
from tests.databases import BACKENDS, empty_database

C = "shop"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    for url in empty_database(request.param, tmp_path, "matching"):
        store = open_store(url)
        yield store
        store.dispose()


def stage(engine: Engine, side: str, account_id: str, email: str | None, phone: str | None) -> None:
    with session_scope(engine) as session:
        session.add(
            StagedAccount(
                side=side, connector=C, account_id=account_id, email=email, phone=phone, balance=0
            )
        )


def pairs(engine: Engine) -> dict[str, tuple[str, str]]:
    with session_scope(engine) as session:
        rows = session.exec(select(ReconcilePair)).all()
        return {r.wix_account_id: (r.external_id, r.matched_by) for r in rows}


def test_links_then_email_then_phone(engine: Engine) -> None:
    """An existing link wins; then a unique email; then a unique phone."""
    start_run(engine, C, fresh=True)
    with session_scope(engine) as session:
        session.add(Link(connector=C, wix_account_id="w-linked", external_id="x-linked"))
    stage(engine, "wix", "w-linked", "a@x.com", None)
    stage(engine, "external", "x-linked", "other@x.com", None)
    stage(engine, "wix", "w-email", "b@x.com", "+14155550001")
    stage(engine, "external", "x-email", "b@x.com", "+14155559999")
    stage(engine, "wix", "w-phone", "c@x.com", "+14155550002")
    stage(engine, "external", "x-phone", None, "+14155550002")
    found = match(engine, C, ["email", "phone"])
    assert pairs(engine) == {
        "w-linked": ("x-linked", "link"),
        "w-email": ("x-email", "email"),
        "w-phone": ("x-phone", "phone"),
    }
    assert found.by == {"link": 1, "email": 1, "phone": 1}
    assert not found.ambiguous and not found.wix_only and not found.external_only


def test_shared_email_is_ambiguous_unless_a_phone_decides(engine: Engine) -> None:
    """Two Wix accounts with one email are never paired by it; distinct phones still pair them."""
    start_run(engine, C, fresh=True)
    stage(engine, "wix", "w1", "family@x.com", "+14155550011")
    stage(engine, "wix", "w2", "family@x.com", "+14155550012")
    stage(engine, "external", "x1", "family@x.com", "+14155550012")
    stage(engine, "wix", "w3", "twins@x.com", None)
    stage(engine, "wix", "w4", "twins@x.com", None)
    stage(engine, "external", "x2", "twins@x.com", None)
    found = match(engine, C, ["email", "phone"])
    assert pairs(engine) == {"w2": ("x1", "phone")}
    assert sorted((s, i) for s, i, _ in found.ambiguous) == [
        ("external", "x2"),
        ("wix", "w3"),
        ("wix", "w4"),
    ]
    assert found.wix_only == ["w1"]


def test_match_on_email_only_ignores_phones(engine: Engine) -> None:
    """With match_on = ["email"], equal phones pair nothing."""
    start_run(engine, C, fresh=True)
    stage(engine, "wix", "w1", None, "+14155550021")
    stage(engine, "external", "x1", None, "+14155550021")
    found = match(engine, C, ["email"])
    assert pairs(engine) == {}
    assert found.wix_only == ["w1"] and found.external_only == ["x1"]


def test_rematching_keeps_done_marks(engine: Engine) -> None:
    """A resumed run matches again without losing which pairs were already applied."""
    start_run(engine, C, fresh=True)
    stage(engine, "wix", "w1", "d@x.com", None)
    stage(engine, "external", "x1", "d@x.com", None)
    match(engine, C, ["email"])
    with session_scope(engine) as session:
        pair = session.get(ReconcilePair, (C, "w1"))
        assert pair is not None
        pair.done = True
        session.add(Link(connector=C, wix_account_id="w1", external_id="x1"))
    match(engine, C, ["email"])
    with session_scope(engine) as session:
        pair = session.get(ReconcilePair, (C, "w1"))
        assert pair is not None and pair.done


def test_linked_account_gone_is_reported(engine: Engine) -> None:
    """A link whose external account no longer exists is reported missing, not re-matched."""
    start_run(engine, C, fresh=True)
    with session_scope(engine) as session:
        session.add(Link(connector=C, wix_account_id="w1", external_id="x-gone"))
    stage(engine, "wix", "w1", "e@x.com", None)
    stage(engine, "external", "x9", "e@x.com", None)
    found = match(engine, C, ["email"])
    assert pairs(engine) == {}
    assert found.missing == [("external", "x-gone")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(415) 555-0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("1-415-555-0123", "+14155550123"),
        ("555-0123", None),
        ("", None),
        (None, None),
    ],
)
def test_phone_key(raw: str | None, expected: str | None) -> None:
    """Phones become E.164; what cannot be read as one is no key at all."""
    assert phone_key(raw) == expected


def test_email_key() -> None:
    """Emails are compared trimmed and lower-cased."""
    assert email_key("  Ann@Example.COM ") == "ann@example.com"
    assert email_key("not-an-email") is None
