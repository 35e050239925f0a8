"""Account partitions and liquidation claims of keeper workers (no broker, no node)."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.store import AccountEvent
from offchain_risk.keeper.workers import LocalClaims, Partition, slot
from offchain_risk.units import WAD, account_id


@pytest.mark.parametrize("count", [1, 2, 4, 7])
def test_partition__every_account_in_exactly_one(count):
    owners = [f"0x{i:040x}" for i in (1, 2**100, 2**159 + 12345)]
    accounts = [account_id(o, sub) for o in owners for sub in range(40)]
    book = Book(1)
    for i, a in enumerate(accounts):
        book.apply(AccountEvent(1, i, a, -1, WAD, 0, 0, 0))
    slots = book.slots[: len(book)]
    masks = np.array([Partition(k, count).mask(slots) for k in range(count)])  # (count, n)
    assert (masks.sum(axis=0) == 1).all()
    for k in range(count):
        held = [a for a in accounts if Partition(k, count).holds(a)]
        assert held == [a for a, m in zip(accounts, masks[k], strict=True) if m]
    if count > 1:  # one owner's sub-accounts spread over the partitions
        assert all(masks[k].any() for k in range(count))


def test_partition__slots_survive_the_book_growing():
    book = Book(1)
    accounts = [account_id("0x" + "ab" * 20, s) for s in range(3_000)]  # past 1,024 rows
    for i, a in enumerate(accounts):
        book.apply(AccountEvent(1, i, a, -1, WAD, 0, 0, 0))
    assert book.slots[: len(book)].tolist() == [slot(a) for a in accounts]


def test_partition__index_outside_count__refused():
    with pytest.raises(ValueError, match="outside"):
        Partition(2, 2)


def test_local_claims__held_by_one_owner_until_released():
    a, b = LocalClaims("a"), LocalClaims("b")
    b._held = a._held  # one table, two owners (as Redis shares it)
    b._lock = a._lock
    assert a.claim(7) and a.claim(7)  # ours again: still ours
    assert not b.claim(7) and a.holder(7) == "a"
    b.release(7)  # not b's to release
    assert a.holder(7) == "a"
    a.release(7)
    assert b.claim(7) and a.holder(7) == "b"


def test_local_claims__expired_claim_taken_over():
    a, b = LocalClaims("a", ttl=0.0), LocalClaims("b")
    b._held, b._lock = a._held, a._lock
    assert a.claim(9)
    assert b.claim(9)  # a's claim lapsed (a dead worker)
