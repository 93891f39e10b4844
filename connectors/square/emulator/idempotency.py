"""Square's idempotency: a key sent again with the same request gets the first answer.

Keys are scoped by endpoint (the route template); the fingerprint covers the path (so the
same key on another account is a different request) and the whole JSON body. Only answers
that applied something are remembered: a refused request may be sent again with its key.
Same key + same request: the stored answer, nothing applied. Same key + another request:
400 IDEMPOTENCY_KEY_REUSED. Keys are forgotten after `idempotency_key_ttl_seconds` (None:
never). `applied` counts the writes each key applied, so tests can prove none ran twice.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.square.emulator.errors import bad_request
from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.wire import Clock, Json


@dataclass(frozen=True)
class Remembered:
    """The first answer to a key."""

    fingerprint: str
    answer: Json
    at: datetime


class IdempotencyStore:
    """Remembered answers by (endpoint, key), and how often each key applied a write."""

    def __init__(self, knobs: SquareKnobs, clock: Clock) -> None:
        self.knobs = knobs
        self.clock = clock
        self._answers: dict[tuple[str, str], Remembered] = {}
        self.applied: Counter[str] = Counter()
        self.replayed: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget every key and count."""
        self._answers.clear()
        self.applied.clear()
        self.replayed.clear()

    def replay(self, scope: str, key: str, fingerprint: str) -> Json | None:
        """The first answer to this request, None if the key is new; raises on key reuse."""
        found = self._answers.get((scope, key))
        if found is None:
            return None
        ttl = self.knobs.idempotency_key_ttl_seconds
        if ttl is not None and self.clock() - found.at > timedelta(seconds=ttl):
            del self._answers[(scope, key)]
            return None
        if found.fingerprint != fingerprint:
            raise bad_request(
                f"The idempotency key `{key}` was used before with a different request.",
                code="IDEMPOTENCY_KEY_REUSED",
                field="idempotency_key",
            )
        self.replayed[key] += 1
        return copy.deepcopy(found.answer)

    def remember(self, scope: str, key: str, fingerprint: str, answer: Json) -> None:
        """Store the answer of a request that applied a write under `key`."""
        self._answers[(scope, key)] = Remembered(fingerprint, copy.deepcopy(answer), self.clock())
        self.applied[key] += 1
