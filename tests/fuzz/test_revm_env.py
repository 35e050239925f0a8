"""The revm environment (revm_env.py) against titanoboa: the same devnet listing deployed on
both, the same actions, and every value the fuzz model reads decoded the same way; reverts
carry their reason and move nothing; anchors roll state and clock back."""

import pytest
from boa_stack import deploy
from revm_env import Revert, RevmEnv

WAD = 10**18
USDC = 10**6
ETH = 0


@pytest.fixture(scope="module")
def revm():
    return deploy(RevmEnv())


def book(s):
    """One trader short 2 ETH from a desk's signed order, both funded with cash; then ETH
    doubles, so the trader is liquidatable."""
    desk, trader = s.actor("liquidator"), s.actor("trader")
    accounts = []
    for who, amount in ((desk, 10**6 * USDC), (trader, 5_000 * USDC)):
        acct = s.account(who, 0)
        s.cash.mint(who, amount, sender=s.owner)
        s.cash.approve(s.engine.address, amount, sender=who)
        s.admin.deposit(acct, s.cash.address, amount, sender=who)
        accounts.append(acct)
    order, sig = s.sign_order(
        desk, owner=desk, subaccount=0, market=ETH, size=2 * WAD, price=2_000 * WAD,
        nonce=1, expiry=2**40,
    )  # fmt: skip
    s.book.fill(order, sig, 2 * WAD, accounts[1], sender=trader)
    s.feeds[ETH].set_price(4_000 * 10**8, sender=s.owner)
    return accounts


def reads(s, accounts):
    """What the fuzz model reads, as plain Python values."""
    e, lens, liq = s.engine, s.lens, s.liquidations
    configs = [lens.asset_config(a) for a in range(4)]
    # Token and feed addresses differ between the two chains: each is its own stack's.
    assert [c[1] for c in configs] == [s.feeds[a].address for a in range(4)]
    return {
        "healths": [tuple(r) for r in e.healths(accounts)],
        "position": [e.position(a, ETH) for a in accounts],
        "cash": [e.cash(a) for a in accounts],
        "account_state": tuple(lens.account_state(accounts[1])),
        "asset_config": [tuple(c)[2:] for c in configs],
        "shocks": [list(lens.shocks(a)) for a in range(4)],
        "price": [tuple(e.price(a)) for a in range(4)],
        "preview": tuple(liq.liquidation_preview(accounts[1], WAD // 3)),
        "domain": tuple(s.book.eip712Domain()),
        "deficit": e.deficit(),
        "balance": s.cash.balanceOf(e.address),
    }


def test_reads__revm_and_titanoboa__same_values(s, revm):
    want = reads(s, book(s))
    with revm.chain.anchor():
        got = reads(revm, book(revm))
    # Same compiler, same constructor arguments: only the verifying contract's address differs.
    want_domain, got_domain = want.pop("domain"), got.pop("domain")
    assert got_domain[:4] == want_domain[:4] and got_domain[5:] == want_domain[5:]
    assert (want_domain[4], got_domain[4]) == (s.book.address, revm.book.address)
    assert got == want
    # Struct fields are named as titanoboa names them.
    with revm.chain.anchor():
        accounts = book(revm)
        assert revm.lens.asset_config(ETH).floor_bps == s.lens.asset_config(ETH).floor_bps
        assert revm.lens.account_state(accounts[1]).equity == revm.engine.healths(accounts)[1][0]


def test_transaction__reverts__reason_decoded_and_nothing_moved(revm):
    who = revm.actor("trader")
    with revm.chain.anchor():
        revm.cash.mint(who, 10, sender=revm.owner)
        with pytest.raises(Revert, match="erc20: transfer amount exceeds balance"):
            revm.cash.transfer(revm.owner, 11, sender=who)
        assert revm.cash.balanceOf(who) == 10


def test_anchor__nested__state_and_clock_rolled_back(revm):
    chain, who = revm.chain, revm.actor("trader")
    start = chain.timestamp
    with chain.anchor():
        revm.cash.mint(who, 1, sender=revm.owner)
        with chain.anchor():
            revm.cash.mint(who, 2, sender=revm.owner)
            chain.time_travel(3_600)
            assert chain.timestamp == start + 3_600
            with pytest.raises(Revert):
                revm.cash.transfer(revm.owner, 10, sender=who)
        assert revm.cash.balanceOf(who) == 1 and chain.timestamp == start
    assert revm.cash.balanceOf(who) == 0


@pytest.mark.parametrize(
    "types, args",
    [
        (["uint256[]"], [[1, 2**256 - 1, 0]]),
        (["uint256[]"], [[]]),
        (["address", "int256[]", "bool", "uint256[]"], ["0x" + "ab" * 20, [-1, 5], True, [7]]),
        (["uint256", "int128"], [3, -2]),
    ],
)
def test_encoder__words_and_word_arrays__as_eth_abi(types, args):
    from eth_abi import encode
    from revm_env import _encoder

    assert _encoder(types)(args) == encode(types, args)
