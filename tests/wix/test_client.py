"""The Wix client against the Wix emulator over real localhost HTTP."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from syncd.budget import TokenBucket
from syncd.errors import (
    ConflictError,
    FatalError,
    NotFoundError,
    OutcomeUnknownError,
    PreconditionError,
    RetriableError,
    SkipError,
)
from syncd.sandbox.server import RunningServer, serve_in_thread
from syncd.sandbox.wix import WixEmulator
from syncd.settings import WixSettings
from syncd.wix.client import WixClient
from tests.fakes import FakeTime
from tests.wix.conftest import SEEDED, api_key_settings

pytestmark = pytest.mark.anyio


async def test_pages_through_every_account(settings: WixSettings) -> None:
    """Query Accounts follows the cursor, 100 a page, and sees each account exactly once."""
    async with WixClient(settings) as wix:
        pages = [page async for page in wix.iter_accounts()]
        total = await wix.count_accounts()
    ids = [account.id for page in pages for account in page.items]
    assert [len(page.items) for page in pages] == [100, 100, 50]
    assert len(set(ids)) == SEEDED == total
    assert wix.calls == len(pages) + 1


async def test_get_by_id_contact_and_email(settings: WixSettings) -> None:
    """An account is found by id, by its contact and by its contact's email."""
    async with WixClient(settings) as wix:
        first = (await wix.query_accounts(limit=1)).items[0]
        assert first.contact_id and first.email
        assert (await wix.get_account(first.id)) == first
        assert (await wix.get_account_by_contact(first.contact_id)) == first
        assert [a.id for a in await wix.find_accounts_by_email(first.email)] == [first.id]
        assert await wix.get_account_by_contact("no-such-contact") is None
        with pytest.raises(NotFoundError):
            await wix.get_account("no-such-account")


async def test_adjust_with_revision_and_stale_revision(settings: WixSettings) -> None:
    """Adjust carries the revision read; a second adjust at that old revision is a 409."""
    async with WixClient(settings) as wix:
        account = (await wix.query_accounts(limit=1)).items[0]
        change = await wix.adjust_points(
            account.id, amount=25, revision=account.revision, description="syncd:op-1 from shop"
        )
        assert change.account.balance == account.balance + 25
        assert change.account.revision > account.revision
        with pytest.raises(ConflictError) as stale:
            await wix.adjust_points(
                account.id, amount=5, revision=account.revision, description="syncd:op-2"
            )
        assert stale.value.status == 409 and stale.value.account == account.id
        ledger = [t async for t in wix.iter_transactions(filter={"accountId": account.id})]
    tagged = [t for t in ledger if t.description == "syncd:op-1 from shop"]
    assert len(tagged) == 1 and tagged[0].id == change.transaction_id
    assert (tagged[0].amount_before, tagged[0].amount_after) == (
        account.balance,
        account.balance + 25,
    )
    assert not [t for t in ledger if t.description == "syncd:op-2"]


async def test_negative_result_is_refused(settings: WixSettings, emulator: WixEmulator) -> None:
    """Taking more points than the balance is refused and changes nothing."""
    async with WixClient(settings) as wix:
        account = (await wix.query_accounts(limit=1)).items[0]
        with pytest.raises(SkipError) as refused:
            await wix.adjust_points(
                account.id,
                amount=-(account.balance + 1),
                revision=account.revision,
                description="syncd:too-much",
            )
        assert refused.value.status == emulator.knobs.negative_status
        assert (await wix.get_account(account.id)).balance == account.balance


async def test_program_not_active(settings: WixSettings, emulator: WixEmulator) -> None:
    """While the program is PAUSED, adjusting and creating accounts are refused as preconditions."""
    async with WixClient(settings) as wix:
        account = (await wix.query_accounts(limit=1)).items[0]
        emulator.set_program_status("PAUSED")
        assert not (await wix.get_program()).active
        with pytest.raises(PreconditionError):
            await wix.adjust_points(
                account.id, amount=1, revision=account.revision, description="syncd:paused"
            )
        contact_id, _ = await wix.create_contact(email="new@example.com", first_name="New")
        with pytest.raises(PreconditionError):
            await wix.ensure_account(contact_id)
        emulator.activate()
        created, was_new = await wix.ensure_account(contact_id)
        again, again_new = await wix.ensure_account(contact_id)
    assert was_new and not again_new and again.id == created.id


async def test_earn_is_idempotent_on_its_key(settings: WixSettings) -> None:
    """Earn twice with one key: one transaction, one change of balance."""
    async with WixClient(settings) as wix:
        account = (await wix.query_accounts(limit=1)).items[0]
        first = await wix.earn_points(account.id, amount=7, idempotency_key="k-1", app_id="syncd")
        second = await wix.earn_points(account.id, amount=7, idempotency_key="k-1", app_id="syncd")
        assert first.transaction_id == second.transaction_id
        assert (await wix.get_account(account.id)).balance == account.balance + 7


async def test_contacts_duplicate_returns_existing(settings: WixSettings) -> None:
    """Creating a contact whose email exists yields the existing contact's id."""
    async with WixClient(settings) as wix:
        made, created = await wix.create_contact(email="dup@example.com", phone="+14155550199")
        same, created_again = await wix.create_contact(email="dup@example.com")
        contact = await wix.get_contact(made)
        found, total = await wix.query_contacts(filter={"info.emails.email": "dup@example.com"})
    assert created and not created_again and same == made
    assert contact.emails == ("dup@example.com",)
    assert contact.phones == ("+14155550199",)
    assert [c.id for c in found] == [made] and total == 1


async def test_429_with_retry_after_is_honoured() -> None:
    """A client over budget gets 429, pauses for Retry-After, and its call then succeeds."""
    fake = FakeTime()
    site = WixEmulator(seed=3, monotonic=fake.clock)
    site.activate()
    site.seed_accounts(3)
    site.knobs.requests_per_minute = 5
    with serve_in_thread(site.app) as server:
        settings = api_key_settings(server, site)
        bucket = TokenBucket(10_000, clock=fake.clock, sleep=fake.sleep)
        async with WixClient(settings, budget=bucket) as wix:
            for _ in range(6):
                await wix.get_program()
    assert wix.rate_limited == 1
    assert site.stats.rate_limited == 1
    assert fake.now >= 1000.0 + 59  # waited out (nearly) the whole window


async def test_budget_at_the_limit_never_sees_429() -> None:
    """Configured at the site's limit, the client spends it without a single 429."""
    fake = FakeTime()
    site = WixEmulator(seed=3, monotonic=fake.clock)
    site.activate()
    site.knobs.requests_per_minute = 20
    with serve_in_thread(site.app) as server:
        settings = api_key_settings(server, site, requests_per_minute=20)
        bucket = TokenBucket(20, clock=fake.clock, sleep=fake.sleep)
        async with WixClient(settings, budget=bucket) as wix:
            for _ in range(60):
                await wix.get_program()
    assert wix.rate_limited == 0
    assert fake.now - 1000.0 >= 120  # 60 calls at 20 a minute: about three minutes


async def test_reads_retry_through_server_errors(
    settings: WixSettings, emulator: WixEmulator
) -> None:
    """5xx on a read is retried (bounded); with every answer failing, the last error surfaces."""
    emulator.knobs.faults.error_rate = 1.0
    async with WixClient(settings) as wix:
        with pytest.raises(RetriableError) as failed:
            await wix.get_program()
        assert wix.calls == 5 and failed.value.status == 503
        emulator.knobs.faults.error_rate = 0.0
        assert (await wix.get_program()).active


@pytest.mark.parametrize("fault", ["fail_after_commit_rate", "timeout_after_commit_rate"])
async def test_adjust_outcome_unknown_is_never_resent(
    settings: WixSettings, emulator: WixEmulator, fault: str
) -> None:
    """A 500 or a timeout after Wix applied an adjust raises OutcomeUnknownError, sent once."""
    emulator.knobs.faults.hang_seconds = 1
    async with WixClient(settings.model_copy(update={"timeout_seconds": 0.3})) as wix:
        account = (await wix.query_accounts(limit=1)).items[0]
        setattr(emulator.knobs.faults, fault, 1.0)
        with pytest.raises(OutcomeUnknownError):
            await wix.adjust_points(
                account.id, amount=3, revision=account.revision, description="syncd:op-x"
            )
        setattr(emulator.knobs.faults, fault, 0.0)
        after = await wix.get_account(account.id)
    assert after.balance == account.balance + 3  # applied exactly once
    tagged = [t for t in emulator.state.all_transactions() if t.get("description") == "syncd:op-x"]
    assert len(tagged) == 1


async def test_wrong_api_key_is_fatal(served: RunningServer, emulator: WixEmulator) -> None:
    """A wrong key is FatalError at once (no retries), telling the operator what to check."""
    settings = api_key_settings(served, emulator, api_key=SecretStr("wrong"))
    async with WixClient(settings) as wix:
        with pytest.raises(FatalError, match=r"check wix\.api_key"):
            await wix.get_program()
        assert wix.calls == 1


async def test_oauth_app_token_fetched_and_refreshed(
    served: RunningServer, emulator: WixEmulator
) -> None:
    """OAuth: a token is fetched once, reused, and fetched again when Wix rejects it."""
    creds = emulator.credentials
    settings = WixSettings(
        base_url=served.url,
        app_id=creds.app_id,
        app_secret=SecretStr(creds.app_secret),
        instance_id=creds.instance_id,
        requests_per_minute=100_000,
    )
    async with WixClient(settings) as wix:
        await wix.get_program()
        await wix.get_program()
        auth = wix.auth
        assert getattr(auth, "tokens_fetched", None) == 1
        emulator.gatekeeper.reset()  # Wix forgets every token it issued
        assert (await wix.get_program()).active
        assert getattr(auth, "tokens_fetched", None) == 2


async def test_unreachable_wix_is_a_clear_retriable_error() -> None:
    """Nothing listening: RetriableError saying what to check, after bounded attempts."""
    settings = WixSettings(
        base_url="http://127.0.0.1:1", site_id="s", api_key=SecretStr("k"), timeout_seconds=1
    )
    async with WixClient(settings) as wix:
        with pytest.raises(RetriableError, match=r"cannot reach http://127\.0\.0\.1:1"):
            await wix.get_program()
        assert wix.calls == 5
