"""The one error tree of syncd: each branch says what the caller does next.

SyncdError
├── ConfigError            bad configuration or usage: print one line, exit 2
├── WebhookRejected        an incoming webhook failed verification: answer 401, store nothing
└── RemoteError            a remote API answered badly (carries remote, status, request id,
    │                      account, vendor code)
    ├── RetriableError     back off and try again (5xx on a read, network down, 429)
    │   └── RateLimitedError   429: wait `retry_after` seconds (or a minute) first
    ├── OutcomeUnknownError    a write may or may not have been applied (timeout, 5xx,
    │                      lost connection after sending): read back, never resend blind
    ├── ConflictError      the remote changed under us (stale revision): re-read, re-plan
    ├── SkipError          this one record cannot be done (not found, invalid, refused):
    │   │                  record it on the link and carry on with the others
    │   ├── NotFoundError
    │   ├── DuplicateError     the record already exists (carries the existing id when known)
    │   └── PreconditionError  the remote refuses in its current state (program not ACTIVE)
    └── FatalError         nothing will work until a person acts (bad credentials,
                           missing permission): stop and alert
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """The configuration or the command line is wrong; `problems` holds one line per fault."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class WebhookRejected(SyncdError):
    """An incoming webhook is not authentic or not well-formed; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RemoteError(SyncdError):
    """A remote API call failed; the subclass says what to do about it."""

    def __init__(
        self,
        message: str,
        *,
        remote: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        account: str | None = None,
    ) -> None:
        self.message = message
        self.remote = remote
        self.status = status
        self.code = code
        self.request_id = request_id
        self.account = account
        super().__init__(message)

    def __str__(self) -> str:
        parts = [f"{self.remote}: {self.message}"]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.account:
            parts.append(f"account={self.account}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class RetriableError(RemoteError):
    """Transient: the same call may succeed later."""


class RateLimitedError(RetriableError):
    """429: the remote asks us to slow down; wait `retry_after` seconds before the next call."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class OutcomeUnknownError(RemoteError):
    """A write was sent and its effect is unknown: read back before deciding anything."""


class ConflictError(RemoteError):
    """The record changed since we read it (stale revision): re-read and re-plan."""


class SkipError(RemoteError):
    """This record cannot be processed now; record it and continue with the others."""


class NotFoundError(SkipError):
    """The record does not exist."""


class DuplicateError(SkipError):
    """The record already exists; `existing_id` names it when the remote said which."""

    def __init__(self, message: str, *, existing_id: str | None = None, **kw: object) -> None:
        self.existing_id = existing_id
        super().__init__(message, **kw)  # type: ignore[arg-type]


class PreconditionError(SkipError):
    """The remote refuses the call in its current state (e.g. the program is not ACTIVE)."""


class FatalError(RemoteError):
    """Credentials or permissions are wrong: nothing will work until a person fixes them."""
