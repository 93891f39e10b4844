"""The sync rules: one pure function from a link's bases and both live balances to a plan.

No I/O, no clock, no database: `decide(bases, wix, ext, policy) -> Plan`. The caller reads the
balances, decides, records the plan in the outbox and carries it out.

The bookkeeping (DESIGN §1). A link keeps two *bases*: for each side, the balance up to which
every change on that side has been dealt with. A sync sees `dW = W - wix_base` and
`dE = E - ext_base`, the changes not yet dealt with, and plans:

- **writes**, `AdjustWix` / `AdjustExternal`: add `delta` to one side; once applied, *both*
  bases move by `carried` (normally `delta`; an overwrite carries one side's change and reverts
  the other's in one write);
- **absorbs**, `Absorb`: a change that is deliberately not carried (a one-way link, a change
  held for review, the part a clamp could not write) moves only its own side's base, at once;
  with a conflict kind it opens a conflict recording the amount, so the ledger still adds up:
  every point is either carried, or parked in an open conflict, exactly;
- `SetBases` starts a new link (the initial policy), `OpenConflict` asks an operator.

Every action's effect on the bases is additive, so a plan interrupted half-way leaves bases
from which a fresh `decide` plans exactly the rest.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from syncd.settings import ConflictPolicy, InitialPolicy, NegativePolicy

Side = Literal["wix", "external"]
Direction = Literal["both", "to_wix", "from_wix"]


class ConflictKind(enum.StrEnum):
    BOTH_CHANGED = "both_changed"  # manual policy: both sides changed
    NEGATIVE = "negative_balance"  # a change would take a side below zero
    MAX_DELTA = "max_delta"  # a change larger than max_auto_delta
    INITIAL = "initial_manual"  # a new link under initial_policy = manual


@dataclass(frozen=True)
class Policy:
    conflict: ConflictPolicy = "merge"
    initial: InitialPolicy = "external"
    negative: NegativePolicy = "clamp"
    max_auto_delta: int = 100_000
    direction: Direction = "both"


@dataclass(frozen=True)
class Bases:
    """A link's bases; None on both for a link that was never synced."""

    wix: int | None
    ext: int | None

    @property
    def new(self) -> bool:
        return self.wix is None or self.ext is None


@dataclass(frozen=True)
class SetBases:
    """Give a new link its starting bases (the initial policy's choice)."""

    wix: int
    ext: int


@dataclass(frozen=True)
class AdjustWix:
    """Add `delta` to the Wix balance; when applied, both bases move by `carried`."""

    delta: int
    carried: int


@dataclass(frozen=True)
class AdjustExternal:
    """Add `delta` to the external balance; when applied, both bases move by `carried`."""

    delta: int
    carried: int


@dataclass(frozen=True)
class Absorb:
    """Count `amount` of `side`'s change as dealt with without carrying it; `side`'s base moves
    by `amount` now. With `conflict`, an open conflict records the amount for an operator."""

    side: Side
    amount: int
    conflict: ConflictKind | None = None
    detail: str = ""


@dataclass(frozen=True)
class OpenConflict:
    """Ask an operator; no balance or base changes."""

    kind: ConflictKind
    detail: str


Action = SetBases | AdjustWix | AdjustExternal | Absorb | OpenConflict
Write = AdjustWix | AdjustExternal


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = field(default_factory=tuple)

    @property
    def writes(self) -> tuple[Write, ...]:
        return tuple(a for a in self.actions if isinstance(a, AdjustWix | AdjustExternal))

    @property
    def empty(self) -> bool:
        return not self.actions

    def bases_after(self, bases: Bases) -> Bases:
        """The bases once every action has been carried out."""
        wix, ext = bases.wix, bases.ext
        for action in self.actions:
            match action:
                case SetBases():
                    wix, ext = action.wix, action.ext
                case AdjustWix() | AdjustExternal():
                    assert wix is not None and ext is not None
                    wix, ext = wix + action.carried, ext + action.carried
                case Absorb(side="wix"):
                    assert wix is not None
                    wix += action.amount
                case Absorb(side="external"):
                    assert ext is not None
                    ext += action.amount
                case OpenConflict():
                    pass
        return Bases(wix, ext)


def decide(bases: Bases, wix: int, ext: int, policy: Policy) -> Plan:
    """The plan that brings one link in step, given its bases and both live balances."""
    actions: list[Action] = []
    conflict = policy.conflict
    if bases.new:
        if policy.initial == "manual":
            detail = f"new link: wix={wix} external={ext}; choose the starting balance"
            return Plan((OpenConflict(ConflictKind.INITIAL, detail),))
        start = initial_bases(wix, ext, policy.initial)
        actions.append(start)
        bases = Bases(start.wix, start.ext)
        if policy.initial == "sum":
            conflict = "merge"  # summing two programs means carrying both balances
    assert bases.wix is not None and bases.ext is not None
    d_wix, d_ext = wix - bases.wix, ext - bases.ext
    if policy.direction == "from_wix" and d_ext:
        actions.append(Absorb("external", d_ext))
        d_ext = 0
    if policy.direction == "to_wix" and d_wix:
        actions.append(Absorb("wix", d_wix))
        d_wix = 0
    if d_wix and d_ext and conflict != "merge":
        actions += _both_changed(d_wix, d_ext, wix, ext, conflict, policy)
    else:
        if d_ext:
            actions += _carry("wix", target=wix, change=d_ext, policy=policy)
        if d_wix:
            actions += _carry("external", target=ext, change=d_wix, policy=policy)
    return Plan(tuple(actions))


def initial_bases(wix: int, ext: int, initial: InitialPolicy) -> SetBases:
    """Starting bases that make the normal rules carry what the initial policy wants:
    `external` copies E to Wix (as if Wix had been at E's base all along), `wix` copies W out,
    `max` copies the larger, `sum` carries each balance to the other side."""
    match initial:
        case "external":
            return SetBases(wix, wix)
        case "wix":
            return SetBases(ext, ext)
        case "max":
            return SetBases(wix, wix) if ext >= wix else SetBases(ext, ext)
        case "sum":
            return SetBases(0, 0)
    raise ValueError(f"no starting bases for initial policy {initial!r}")


def _both_changed(
    d_wix: int, d_ext: int, wix: int, ext: int, conflict: ConflictPolicy, policy: Policy
) -> list[Action]:
    if conflict == "manual":
        detail = f"both sides changed: wix {d_wix:+d}, external {d_ext:+d}"
        return [
            Absorb("wix", d_wix, ConflictKind.BOTH_CHANGED, detail),
            Absorb("external", d_ext, ConflictKind.BOTH_CHANGED, detail),
        ]
    # wix_wins / external_wins: the loser reverts its own change and takes the winner's.
    side: Side
    if conflict == "wix_wins":
        side, target, winner, loser = "external", ext, d_wix, d_ext
    else:
        side, target, winner, loser = "wix", wix, d_ext, d_wix
    delta = winner - loser
    if delta == 0:
        return [Absorb("wix", d_wix), Absorb("external", d_ext)]
    actions = _guarded(side, target, delta, winner, policy)
    if not any(isinstance(a, AdjustWix | AdjustExternal) for a in actions):
        actions.append(Absorb(side, loser))  # held for review: the loser keeps its balance
    return actions


def _carry(side: Side, *, target: int, change: int, policy: Policy) -> list[Action]:
    """Carry the other side's `change` onto `side`, whose balance is `target`."""
    return _guarded(side, target, change, change, policy)


def _guarded(side: Side, target: int, delta: int, carried: int, policy: Policy) -> list[Action]:
    """One write of `delta` onto `side`, held back by the mass-change brake and the negative
    rule; what is held is absorbed on the side the change came from, with a conflict."""
    origin: Side = "external" if side == "wix" else "wix"
    if abs(delta) > policy.max_auto_delta:
        detail = f"{delta:+d} for {side} exceeds max_auto_delta {policy.max_auto_delta}"
        return [Absorb(origin, carried, ConflictKind.MAX_DELTA, detail)]
    if delta < 0 and target + delta < 0:
        fits = max(delta, -max(target, 0))
        if policy.negative == "hold" or fits == 0:
            detail = f"{delta:+d} would take {side} from {target} below zero"
            return [Absorb(origin, carried, ConflictKind.NEGATIVE, detail)]
        held = delta - fits
        detail = f"{delta:+d} would take {side} from {target} below zero; wrote {fits:+d}"
        return [
            _write(side, fits, carried - held),
            Absorb(origin, held, ConflictKind.NEGATIVE, detail),
        ]
    return [_write(side, delta, carried)]


def _write(side: Side, delta: int, carried: int) -> Write:
    return AdjustWix(delta, carried) if side == "wix" else AdjustExternal(delta, carried)


def rebase_for(
    take: Literal["wix", "external", "value"], wix: int, ext: int, value: int = 0
) -> Bases:
    """Bases from which `decide` under merge brings both sides to the balance an operator
    chose when resolving a conflict: Wix's, the external one, or `value` (each side is
    written the difference, once)."""
    match take:
        case "wix":
            return Bases(ext, ext)  # the external side takes W - E
        case "external":
            return Bases(wix, wix)  # Wix takes E - W
        case "value":
            start = wix + ext - value  # each side then carries the other's way to `value`
            return Bases(start, start)
    raise ValueError(f"cannot resolve by taking {take!r}")
