"""The connector contract: what the engine relies on, checked for every connector against its
emulator on a real localhost port (see `harnesses.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from connectors.base import ReadBack
from syncd.clock import utcnow
from syncd.errors import (
    FatalError,
    NotFoundError,
    OutcomeUnknownError,
    RetriableError,
    WebhookRejected,
)
from tests.contract.base import Harness
from tests.contract.harnesses import HARNESSES

pytestmark = pytest.mark.anyio


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made = HARNESSES[request.param]()
    yield made
    made.close()


async def test_pages_to_the_end_and_resumes(harness: Harness) -> None:
    """Every account once, with its match keys; a page's cursor resumes after that page."""
    ids = {harness.seed(f"p{i}@example.com", f"+1415666{i:04d}", i) for i in range(450)}
    async with harness.connector() as connector:
        pages = [page async for page in connector.iter_accounts()]
        seen = [a.id for page in pages for a in page.accounts]
        assert set(seen) >= ids and len(seen) == len(set(seen))
        assert pages[-1].cursor is None and len(pages) > 1
        resumed = [
            a.id async for page in connector.iter_accounts(pages[0].cursor) for a in page.accounts
        ]
        assert resumed == seen[len(pages[0].accounts) :]
        emails = {a.email for page in pages for a in page.accounts}
    assert "p7@example.com" in emails


async def test_lookups(harness: Harness) -> None:
    """Find by email (lower-cased) and by E.164 phone; nothing for unknown keys."""
    account = harness.seed("Lookup@Example.com", "+14156670001", 5)
    async with harness.connector() as connector:
        assert [a.id for a in await connector.find_accounts("email", "lookup@example.com")] == [
            account
        ]
        assert [a.id for a in await connector.find_accounts("phone", "+14156670001")] == [account]
        assert await connector.find_accounts("email", "nobody@example.com") == []
        fresh = await connector.get_account(account)
        assert fresh.balance == 5
        with pytest.raises(NotFoundError):
            await connector.get_account("no-such-account")


async def test_write_is_applied_once_under_retry(harness: Harness) -> None:
    """The same key twice applies once; a lost answer is retried as a replay or left for
    read-back — never applied twice."""
    account = harness.seed("w@example.com", "+14156670002", 100)
    async with harness.connector() as connector:
        await connector.apply_delta(account, -30, key="op-contract-1", reason="syncd:op-contract-1")
        await connector.apply_delta(account, -30, key="op-contract-1", reason="syncd:op-contract-1")
        assert harness.balance(account) == 70
        harness.fail_after_commit(True)
        try:
            with pytest.raises((OutcomeUnknownError, RetriableError)):
                await connector.apply_delta(
                    account, 5, key="op-contract-2", reason="syncd:op-contract-2"
                )
        finally:
            harness.fail_after_commit(False)
        assert harness.balance(account) == 75


async def test_read_back_tells_applied_from_absent(harness: Harness) -> None:
    """read_back finds a tagged write and says ABSENT for one never made."""
    account = harness.seed("r@example.com", "+14156670003", 10)
    since = utcnow() - timedelta(minutes=1)
    async with harness.connector() as connector:
        made = await connector.apply_delta(account, 4, key="op-rb-1", reason="syncd:op-rb-1")
        found = await connector.read_back(account, key="op-rb-1", since=since)
        assert found.outcome is ReadBack.APPLIED and found.remote_id == made.remote_id
        missing = await connector.read_back(account, key="op-rb-2", since=since)
        assert missing.outcome is ReadBack.ABSENT


async def test_change_feed_reports_source_changes_not_ours(harness: Harness) -> None:
    """changes_since lists a change made at the source after the cursor, not syncd's writes."""
    account = harness.seed("f@example.com", "+14156670004", 10)
    async with harness.connector() as connector:
        if not connector.capabilities.change_feed:
            pytest.skip(f"{harness.name} has no change feed")
        start = await connector.changes_since(None)
        harness.source_change(account, 12)
        await connector.apply_delta(account, 1, key="op-feed", reason="syncd:op-feed")
        page = await connector.changes_since(start.cursor)
    assert page.account_ids == [account]


async def test_webhooks_verify_and_forgeries_are_rejected(harness: Harness) -> None:
    """A genuine webhook parses to the changed account; a tampered one is WebhookRejected."""
    account = harness.seed("h@example.com", "+14156670005", 10)
    harness.source_change(account, 3)
    body, headers = harness.signed_webhook()
    async with harness.connector() as connector:
        if not connector.capabilities.webhooks:
            pytest.skip(f"{harness.name} takes no webhooks")
        events = connector.verify_webhook(body, headers, now=utcnow())
        assert account in {e.account_id for e in events}
        with pytest.raises(WebhookRejected):
            connector.verify_webhook(body + b" ", headers, now=utcnow())
        with pytest.raises(WebhookRejected):
            connector.verify_webhook(body, {}, now=utcnow())


async def test_wrong_credentials_are_fatal(harness: Harness) -> None:
    """Refused credentials are FatalError at once: nothing will work until a person acts."""
    async with harness.connector(wrong_credentials=True) as connector:
        with pytest.raises(FatalError):
            await connector.get_account("any")
