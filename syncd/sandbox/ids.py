"""Seeded id factories: a seeded emulator hands out the same ids, in the same order, every run.

    ids = IdFactory(seed)
    ids.uuid()  /  ids()           a version-4 UUID
    ids.token(alphabet, length)    a random string over `alphabet` (vendor-style ids)
    ids.reseed(seed)               start the sequence again

An emulator keeps one factory per sequence (entity ids, webhook event ids, request ids) so
that adding a webhook does not shift the entity ids a test expects.
"""

from __future__ import annotations

import random
import uuid


class IdFactory:
    """Ids drawn from one seeded random sequence."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Start the sequence again from `seed`."""
        self._rng.seed(seed)

    def uuid(self) -> str:
        """A new random (version 4) UUID."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def __call__(self) -> str:
        """A new random (version 4) UUID, for code that takes a `() -> str` id source."""
        return self.uuid()

    def token(self, alphabet: str, length: int) -> str:
        """`length` characters drawn from `alphabet`."""
        return "".join(self._rng.choice(alphabet) for _ in range(length))
