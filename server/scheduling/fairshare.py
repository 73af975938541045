"""Usage-based fair share: recent consumption lowers a dataset's priority.

IceProd has no accounting of consumed CPU hours (reference §6.3); its only
"fair share" is fixed user/group weights. frazil records core-hours per user
and per group (``Store.add_usage`` on every report) and the queue loop turns
them into a factor in [1 - weight, 1] that multiplies IceProd's dataset
priority: a user (or group) that consumed a large share of the recent
core-hours of the users (groups) now competing gets lower priority.

"Recent" means exponentially decayed with a configurable half-life. The
store keeps cumulative totals only, so the decay is applied here, to the
difference between successive observations. The decayed values live in the
memory of the replica that holds the queue lease; a restart (or a lease
move) starts again from the cumulative totals, i.e. treats the whole history
as recent until it decays — conservative, and documented in
docs/scheduling.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from server.store import Usage


def decay(value: float, seconds: float, half_life_hours: float) -> float:
    """``value`` after ``seconds`` of exponential decay (half-life in hours)."""
    if half_life_hours <= 0:
        return 0.0
    return value * 0.5 ** (max(seconds, 0.0) / (half_life_hours * 3600.0))


def share_factor(user_share: float, group_share: float, weight: float) -> float:
    """1 for no recent usage, 1 - weight for a user and group that consumed
    everything; linear in the mean of the two shares."""
    return 1.0 - weight * (user_share + group_share) / 2.0


@dataclass
class _Decayed:
    total: float
    """Cumulative core-hours at the last observation."""
    decayed: float
    at: float
    """Epoch seconds of the last observation."""


@dataclass
class FairShare:
    half_life_hours: float
    weight: float = 0.5
    _state: dict[tuple[str, str], _Decayed] = field(default_factory=dict)

    def observe(self, usage: Iterable[Usage], now: float) -> None:
        """Fold in the store's cumulative totals as of ``now``."""
        for u in usage:
            key = (u.kind, u.name)
            old = self._state.get(key)
            if old is None:
                self._state[key] = _Decayed(u.core_hours, u.core_hours, now)
                continue
            # A total that went down (an admin reset the accounting) counts as no new usage.
            added = max(u.core_hours - old.total, 0.0)
            old.decayed = decay(old.decayed, now - old.at, self.half_life_hours) + added
            old.total, old.at = u.core_hours, now

    def recent(self, kind: str, name: str, now: float) -> float:
        """Decayed core-hours of one user or group as of ``now``."""
        state = self._state.get((kind, name))
        return decay(state.decayed, now - state.at, self.half_life_hours) if state else 0.0

    def shares(self, kind: str, names: Iterable[str], now: float) -> dict[str, float]:
        """Each name's fraction of the recent usage of ``names`` (the users or
        groups competing now); all zero when none of them used anything."""
        recent = {name: self.recent(kind, name, now) for name in set(names)}
        total = sum(recent.values())
        return {name: (value / total if total > 0 else 0.0) for name, value in recent.items()}

    def factors(self, owners: dict[str, tuple[str, str]], now: float) -> dict[str, float]:
        """Factor per dataset; ``owners``: {dataset_id: (username, group)}."""
        users = self.shares("user", (u for u, _ in owners.values()), now)
        groups = self.shares("group", (g for _, g in owners.values()), now)
        return {ds: share_factor(users[u], groups[g], self.weight) for ds, (u, g) in owners.items()}
