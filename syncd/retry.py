"""Retries, declared once: bounded by attempts and by time, honouring Retry-After.

Only calls that are safe to repeat are retried here (reads, and writes the remote makes
idempotent). A write whose outcome is unknown is never retried blind: it surfaces as
`OutcomeUnknownError` and is resolved by reading back (DESIGN §2).

Tests call `set_testing(True)` so retries happen without waiting. Under freezegun the monotonic
clock is frozen too, so the time bound never fires there: attempts bound every retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from syncd.errors import RateLimitedError, RetriableError

_testing = False
DEFAULT_RETRY_AFTER = 60.0


def set_testing(on: bool) -> None:
    """Turn waiting between attempts off (on=True) or back on."""
    global _testing
    _testing = on


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one call: at most `attempts` times within `max_seconds`."""

    attempts: int = 5
    max_seconds: float = 300.0
    initial_wait: float = 0.5
    max_wait: float = 30.0

    def retrying(self) -> AsyncRetrying:
        """A tenacity loop retrying RetriableError under this policy, re-raising the last one."""
        backoff = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: RetryCallState) -> float:
            if _testing:
                return 0.0
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, RateLimitedError):
                return error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
            return float(backoff(state))

        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_seconds),
            wait=wait,
            retry=retry_if_exception_type(RetriableError),
            reraise=True,
        )
