"""Pair staged accounts, in SQL: existing links first, then each match key in turn.

A key pairs two accounts only when it is unique among the accounts still unpaired on *both*
sides; a key shared by several candidates is never guessed at — it is reported as ambiguous
(another key may still pair those accounts, e.g. two family members sharing an email but not a
phone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from syncd.reconcile.staging import EXTERNAL, WIX
from syncd.store.db import session_scope

KEYS = ("email", "phone")

_UNPAIRED_WIX = (
    "{a}.side = 'wix' AND {a}.connector = :c"
    " AND {a}.account_id NOT IN (SELECT wix_account_id FROM reconcile_pairs WHERE connector = :c)"
    " AND {a}.account_id NOT IN (SELECT wix_account_id FROM links WHERE connector = :c)"
)
_UNPAIRED_EXT = (
    "{a}.side = 'external' AND {a}.connector = :c"
    " AND {a}.account_id NOT IN (SELECT external_id FROM reconcile_pairs WHERE connector = :c)"
    " AND {a}.account_id NOT IN (SELECT external_id FROM links WHERE connector = :c)"
)


@dataclass
class Matching:
    """How the staged accounts of one connector paired up."""

    by: dict[str, int] = field(default_factory=dict)  # link / email / phone → pairs
    ambiguous: list[tuple[str, str, str]] = field(default_factory=list)  # (side, id, key)
    wix_only: list[str] = field(default_factory=list)
    external_only: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # linked, gone: (side, id)


def match(engine: Engine, connector: str, match_on: Sequence[str]) -> Matching:
    """Add to `reconcile_pairs` every pair not there yet (a resumed run keeps its pairs and
    their `done` marks) and say what stayed unpaired, and why."""
    params = {"c": connector}
    result = Matching()
    with session_scope(engine) as session:
        session.execute(
            text(
                "INSERT INTO reconcile_pairs (connector, wix_account_id, external_id, matched_by,"
                " started, done)"
                " SELECT l.connector, l.wix_account_id, l.external_id, 'link', false, false"
                " FROM links l"
                " JOIN reconcile_accounts w ON w.side = 'wix' AND w.connector = l.connector"
                "  AND w.account_id = l.wix_account_id"
                " JOIN reconcile_accounts x ON x.side = 'external' AND x.connector = l.connector"
                "  AND x.account_id = l.external_id"
                " WHERE l.connector = :c AND NOT EXISTS (SELECT 1 FROM reconcile_pairs p"
                "  WHERE p.connector = :c AND p.wix_account_id = l.wix_account_id)"
            ),
            params,
        )
        for key in (k for k in match_on if k in KEYS):
            session.execute(text(_pair_by(key)), params | {"key": key})
        result.by = pair_counts(session, connector)
        ambiguous: set[tuple[str, str]] = set()
        for key in (k for k in match_on if k in KEYS):
            for side, account_id in session.execute(text(_ambiguous(key)), params):
                if (side, account_id) not in ambiguous:
                    ambiguous.add((side, account_id))
                    result.ambiguous.append((side, account_id, key))
        for side, template in ((WIX, _UNPAIRED_WIX), (EXTERNAL, _UNPAIRED_EXT)):
            rows = session.execute(
                text(
                    f"SELECT a.account_id FROM reconcile_accounts a WHERE {template.format(a='a')}"
                    " ORDER BY a.account_id"
                ),
                params,
            )
            unpaired = [r[0] for r in rows if (side, r[0]) not in ambiguous]
            if side == WIX:
                result.wix_only = unpaired
            else:
                result.external_only = unpaired
        result.missing = [
            (str(side), str(account_id))
            for side, account_id in session.execute(text(_MISSING), params)
        ]
    return result


def pair_counts(session: Session, connector: str) -> dict[str, int]:
    """How many pairs each way of matching made (link, email, phone, created)."""
    rows = session.execute(
        text(
            "SELECT matched_by, count(*) FROM reconcile_pairs WHERE connector = :c"
            " GROUP BY matched_by"
        ),
        {"c": connector},
    )
    return {str(by): int(count) for by, count in rows}


def _pair_by(key: str) -> str:
    assert key in KEYS
    wix = _UNPAIRED_WIX.format(a="w")
    ext = _UNPAIRED_EXT.format(a="x")
    return (
        "INSERT INTO reconcile_pairs (connector, wix_account_id, external_id, matched_by,"
        " started, done)"
        # Typed: PostgreSQL cannot infer a parameter used both here and in WHERE.
        f" SELECT CAST(:c AS VARCHAR), w.account_id, x.account_id, CAST(:key AS VARCHAR),"
        " false, false"
        f" FROM reconcile_accounts w JOIN reconcile_accounts x ON x.{key} = w.{key}"
        f" WHERE w.{key} IS NOT NULL AND {wix} AND {ext}"
        f" AND (SELECT count(*) FROM reconcile_accounts w2 WHERE w2.{key} = w.{key}"
        f"      AND {_UNPAIRED_WIX.format(a='w2')}) = 1"
        f" AND (SELECT count(*) FROM reconcile_accounts x2 WHERE x2.{key} = x.{key}"
        f"      AND {_UNPAIRED_EXT.format(a='x2')}) = 1"
    )


def _ambiguous(key: str) -> str:
    """Unpaired accounts whose `key` has candidates on the other side, but not exactly one
    on each side."""
    assert key in KEYS
    counts = (
        "(SELECT count(*) FROM reconcile_accounts w2 WHERE w2.{key} = a.{key} AND {wix})",
        "(SELECT count(*) FROM reconcile_accounts x2 WHERE x2.{key} = a.{key} AND {ext})",
    )
    wix_count, ext_count = (
        c.format(key=key, wix=_UNPAIRED_WIX.format(a="w2"), ext=_UNPAIRED_EXT.format(a="x2"))
        for c in counts
    )
    unpaired = f"(({_UNPAIRED_WIX.format(a='a')}) OR ({_UNPAIRED_EXT.format(a='a')}))"
    return (
        f"SELECT a.side, a.account_id FROM reconcile_accounts a"
        f" WHERE a.{key} IS NOT NULL AND {unpaired}"
        f" AND {wix_count} >= 1 AND {ext_count} >= 1"
        f" AND ({wix_count} > 1 OR {ext_count} > 1)"
        f" ORDER BY a.side, a.account_id"
    )


_MISSING = (
    "SELECT 'wix', l.wix_account_id FROM links l WHERE l.connector = :c AND NOT EXISTS"
    " (SELECT 1 FROM reconcile_accounts w WHERE w.side = 'wix' AND w.connector = :c"
    "  AND w.account_id = l.wix_account_id)"
    " UNION ALL "
    "SELECT 'external', l.external_id FROM links l WHERE l.connector = :c AND NOT EXISTS"
    " (SELECT 1 FROM reconcile_accounts x WHERE x.side = 'external' AND x.connector = :c"
    "  AND x.account_id = l.external_id)"
)
