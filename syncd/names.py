"""People's names as the systems hold them: one display name, or a first and a last part."""

from __future__ import annotations


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """A display name as (first, last): the first word, then the rest; None for a part that
    is not there."""
    if not name or not name.strip():
        return None, None
    first, _, last = name.strip().partition(" ")
    return first, last.strip() or None


def join_name(*parts: object) -> str | None:
    """ "First Last" from a first and a last part (either may be missing or not text)."""
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return name or None
