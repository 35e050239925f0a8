"""Work sharing between keeper workers: account partitions and liquidation claims.

Several keeper processes (Silverback workers on a taskiq broker, on one machine or many)
serve one deployment. Each block is split into ``count`` :class:`Partition` tasks that the
broker hands to whichever worker is free, so a worker that dies only delays its task: the
next block's task of that partition goes to a live worker (and a Redis stream broker
redelivers an unacknowledged task after its idle timeout). Every worker indexes the whole
book (reads are cheap) and scans and liquidates only its partition's accounts.

Before previewing an account, a worker takes its :class:`Claims` entry, which stays held
while the liquidation is in flight: a partition processed by another worker at the next
block skips it (``in_flight``). The claim is released when the transaction is mined,
refused or not sent, and expires after ``ttl`` seconds, so an account claimed by a worker
that died is taken again (if still liquidatable) once its claim lapses. Every worker signs
with its own key (its own nonce lane), so transactions never queue behind another
worker's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

SLOT_MODULUS = 1_000_000_007  # a prime: mixes the owner's bits and the sub-account id
DEFAULT_TTL = 120.0  # seconds a claim lives without a release


def slot(account: int) -> int:
    """The account's partition slot: ``account mod`` a prime, stable across processes."""
    return account % SLOT_MODULUS


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` of ``count``: the accounts with ``slot % count == index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition index {self.index} outside [0, {self.count})")

    def mask(self, slots: np.ndarray) -> np.ndarray:
        """(n,) bool: the rows of ``slots`` (n,) in this partition."""
        if self.count == 1:
            return np.ones(len(slots), dtype=bool)
        return slots % self.count == self.index

    def holds(self, account: int) -> bool:
        return slot(account) % self.count == self.index


class Claims(Protocol):
    """Who is liquidating an account right now."""

    owner: str

    def claim(self, account: int) -> bool:
        """Take ``account`` for this owner; False while another owner holds it."""
        ...

    def release(self, account: int) -> None:
        """Give ``account`` back (only this owner's claim)."""
        ...

    def holder(self, account: int) -> str | None: ...


class LocalClaims:
    """Claims within one process (the default: one keeper, no broker)."""

    def __init__(self, owner: str = "local", ttl: float = DEFAULT_TTL):
        self.owner, self.ttl = owner, ttl
        self._held: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def claim(self, account: int) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._held.get(account)
            if held is not None and held[0] != self.owner and held[1] > now:
                return False
            self._held[account] = (self.owner, now + self.ttl)
            return True

    def release(self, account: int) -> None:
        with self._lock:
            held = self._held.get(account)
            if held is not None and held[0] == self.owner:
                del self._held[account]

    def holder(self, account: int) -> str | None:
        held = self._held.get(account)
        return held[0] if held is not None and held[1] > time.monotonic() else None


# Delete the key only when this owner still holds it (an expired claim taken by another
# worker must survive this worker's late release).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisClaims:
    """Claims shared by every worker through Redis: ``SET key owner NX EX ttl``."""

    def __init__(
        self, client: Any, owner: str, *, ttl: float = DEFAULT_TTL, prefix: str = "ballast"
    ):
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self.client, self.owner, self.ttl, self.prefix = client, owner, ttl, prefix
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, owner: str, **kwargs: Any) -> RedisClaims:
        import redis

        return cls(redis.Redis.from_url(url, decode_responses=True), owner, **kwargs)

    def _key(self, account: int) -> str:
        return f"{self.prefix}:claim:{account:x}"

    def claim(self, account: int) -> bool:
        key = self._key(account)
        if self.client.set(key, self.owner, nx=True, px=int(self.ttl * 1000)):
            return True
        # Ours already (a later block of the same liquidation): keep it, refresh the TTL.
        if self.client.get(key) == self.owner:
            self.client.pexpire(key, int(self.ttl * 1000))
            return True
        return False

    def release(self, account: int) -> None:
        self._release(keys=[self._key(account)], args=[self.owner])

    def holder(self, account: int) -> str | None:
        return self.client.get(self._key(account))
