"""RateSnapshots: vault rate-cap snapshots (``submit``) and funding-cap cuts
(``submit_funding_cap``) signed by M of the risk governor's signers; every bad signature,
nonce, deadline, relayer or cap reverts with nothing moved."""

import dataclasses

import ape
import pytest
from conftest import ETH, SOL, WAD

from offchain_risk import devnet
from offchain_risk.keeper.snapshots import (
    funding_cap_args,
    funding_cap_message,
    sign_message,
    snapshot_args,
    snapshot_message,
)
from offchain_risk.models.funding import FundingParams
from offchain_risk.models.vault import RateCap


@pytest.fixture
def vault_asset(project, deployment, owner, weth):
    vault = project.MockVault.deploy("Staked WETH", "sWETH", weth, sender=owner)
    weth.mint(owner, WAD, sender=owner)
    weth.approve(vault, WAD, sender=owner)
    vault.deposit(WAD, owner, sender=owner)
    d = dataclasses.replace(
        deployment,
        tokens=dict(deployment.tokens),
        feeds=dict(deployment.feeds),
        symbols=dict(deployment.symbols),
    )
    return devnet.list_vault(
        project, d, owner, symbol="sWETH", underlying="ETH", vault_class="savings"
    )


@pytest.fixture
def snapshots(project, deployment, owner, governor):
    return devnet.deploy_rate_snapshots(project, deployment, owner, governor)


@pytest.fixture
def lowered(engine, vault_asset, snapshots):
    """A snapshot 8 days old at 99% of the listed ratio, and its message (nonce 0)."""
    cap = RateCap.from_word(engine.vault_word(vault_asset))
    ape.chain.pending_timestamp = cap.snapshot_time + 9 * 86400
    ape.chain.mine()
    now = ape.chain.blocks.head.timestamp
    return snapshot_message(
        snapshots, vault_asset, cap.ratio * 99 // 100, cap.snapshot_time + 86400, 1_000, now + 600
    )


def state(engine, snapshots, asset):
    return (engine.vault_word(asset), snapshots.next_nonce())


def test_submit__two_of_three__moves_the_snapshot(
    engine, snapshots, vault_asset, lowered, risk_signers, keeper
):
    sigs = sign_message(lowered, risk_signers[:2])
    tx = snapshots.submit(snapshot_args(lowered), sigs, sender=keeper)
    cap = RateCap.from_word(engine.vault_word(vault_asset))
    assert (cap.ratio, cap.snapshot_time, cap.max_growth_bps) == (
        lowered.ratio,
        lowered.timestamp,
        1_000,
    )
    assert snapshots.next_nonce() == 1
    [applied] = [x for x in tx.events if x.event_name == "RateSnapshotApplied"]
    assert applied.nonce == 0 and applied.asset == vault_asset and applied.relayer == keeper


@pytest.mark.parametrize(
    "case, message",
    [
        ("one_signature", "snapshots: below threshold"),
        ("stranger_signs", "snapshots: not a signer"),
        ("unsorted", "snapshots: signers not sorted"),
        ("duplicate", "snapshots: signers not sorted"),
        ("short_signature", "snapshots: bad signature length"),
        ("signer_relays", "snapshots: signer cannot relay"),
        ("expired", "snapshots: expired"),
        ("bad_nonce", "snapshots: bad nonce"),
        ("paused", "snapshots: governor paused"),
        ("engine_refuses", "vault: snapshot too recent"),
        ("not_manager", "vault: not snapshot manager"),
    ],
)
def test_submit__bad_input__reverts_nothing_moves(
    engine, snapshots, governor, vault_asset, lowered, risk_signers, keeper, stranger,
    guardian, owner, case, message,
):  # fmt: skip
    msg, signers, relayer = lowered, list(risk_signers[:2]), keeper
    sigs = None
    if case == "one_signature":
        signers = signers[:1]
    elif case == "stranger_signs":
        signers = [risk_signers[0], stranger]
    elif case == "unsorted":
        sigs = list(reversed(sign_message(msg, signers)))
    elif case == "duplicate":
        sigs = sign_message(msg, signers[:1]) * 2
    elif case == "short_signature":
        sigs = [s[:64] for s in sign_message(msg, signers)]
    elif case == "signer_relays":
        relayer = risk_signers[2]
    elif case == "expired":
        msg = snapshot_message(
            snapshots, msg.asset, msg.ratio, msg.timestamp, 1_000,
            ape.chain.blocks.head.timestamp - 1,
        )  # fmt: skip
    elif case == "bad_nonce":
        msg = snapshot_message(
            snapshots, msg.asset, msg.ratio, msg.timestamp, 1_000, msg.deadline, nonce=1
        )
    elif case == "paused":
        governor.pause(sender=guardian)
    elif case == "engine_refuses":
        msg = snapshot_message(
            snapshots, msg.asset, msg.ratio, ape.chain.blocks.head.timestamp - 86400, 1_000,
            msg.deadline,
        )  # fmt: skip
    elif case == "not_manager":
        engine.set_snapshot_manager(owner, sender=owner)
    if sigs is None:
        sigs = sign_message(msg, signers)
    before = state(engine, snapshots, vault_asset)
    with ape.reverts(message):
        snapshots.submit(snapshot_args(msg), sigs, sender=relayer)
    assert state(engine, snapshots, vault_asset) == before


def test_submit__replay__refused(engine, snapshots, vault_asset, lowered, risk_signers, keeper):
    sigs = sign_message(lowered, risk_signers[:2])
    snapshots.submit(snapshot_args(lowered), sigs, sender=keeper)
    before = state(engine, snapshots, vault_asset)
    with ape.reverts("snapshots: bad nonce"):
        snapshots.submit(snapshot_args(lowered), sigs, sender=keeper)
    assert state(engine, snapshots, vault_asset) == before


def test_submit__removed_signer__no_longer_counts(
    engine, snapshots, governor, vault_asset, lowered, risk_signers, keeper, owner
):
    """The signer set is the governor's: removing a signer there voids it here."""
    governor.remove_signer(risk_signers[1], sender=owner)
    before = state(engine, snapshots, vault_asset)
    with ape.reverts("snapshots: not a signer"):
        snapshots.submit(
            snapshot_args(lowered), sign_message(lowered, risk_signers[:2]), sender=keeper
        )
    assert state(engine, snapshots, vault_asset) == before


@pytest.fixture
def funding_on(engine, owner):
    """ETH's funding on at a cap of 0.1% an hour (8 h convergence, 0.001% interest)."""
    engine.set_funding_params(ETH, 8, 10**13, 10**15, sender=owner)
    return FundingParams(8, 10**13, 10**15)


def cap_state(engine, snapshots):
    return (engine.funding_params(ETH), engine.funding_params(SOL), snapshots.next_nonce())


def test_submit_funding_cap__two_of_three__lowers_only_the_cap(
    engine, snapshots, funding_on, risk_signers, keeper
):
    cut = funding_cap_message(snapshots, ETH, 10**14, ape.chain.blocks.head.timestamp + 600)
    tx = snapshots.submit_funding_cap(
        funding_cap_args(cut), sign_message(cut, risk_signers[:2]), sender=keeper
    )
    params = FundingParams.unpack(engine.funding_params(ETH))
    assert params == FundingParams(funding_on.convergence_hours, funding_on.interest, 10**14)
    assert snapshots.next_nonce() == 1
    [applied] = [x for x in tx.events if x.event_name == "FundingCapApplied"]
    assert applied.nonce == 0 and applied.market == ETH and applied.relayer == keeper
    [logged] = [x for x in tx.events if x.event_name == "FundingParamsSet"]
    assert (logged.market, logged.convergence_hours, logged.interest, logged.cap) == (
        ETH, 8, 10**13, 10**14,
    )  # fmt: skip


@pytest.mark.parametrize(
    "case, message",
    [
        ("equal", "ledger: funding cap not lower"),
        ("higher", "ledger: funding cap not lower"),
        ("funding_never_on", "ledger: funding cap not lower"),
        ("one_signature", "snapshots: below threshold"),
        ("stranger_signs", "snapshots: not a signer"),
        ("signer_relays", "snapshots: signer cannot relay"),
        ("expired", "snapshots: expired"),
        ("bad_nonce", "snapshots: bad nonce"),
        ("paused", "snapshots: governor paused"),
        ("snapshot_signed", "snapshots: not a signer"),
        ("not_manager", "ownable: caller is not the owner"),
    ],
)
def test_submit_funding_cap__bad_input__reverts_nothing_moved(
    engine, snapshots, governor, funding_on, risk_signers, keeper, stranger, guardian, owner,
    case, message,
):  # fmt: skip
    deadline = ape.chain.blocks.head.timestamp + 600
    market, cap, nonce, signers, relayer = ETH, 10**14, None, list(risk_signers[:2]), keeper
    if case == "equal":
        cap = funding_on.cap
    elif case == "higher":
        cap = funding_on.cap + 1
    elif case == "funding_never_on":
        market, cap = SOL, 0
    elif case == "one_signature":
        signers = signers[:1]
    elif case == "stranger_signs":
        signers = [risk_signers[0], stranger]
    elif case == "signer_relays":
        relayer = risk_signers[2]
    elif case == "expired":
        deadline = ape.chain.blocks.head.timestamp - 1
    elif case == "bad_nonce":
        nonce = 1
    elif case == "paused":
        governor.pause(sender=guardian)
    elif case == "not_manager":
        engine.set_snapshot_manager(owner, sender=owner)
    cut = funding_cap_message(snapshots, market, cap, deadline, nonce=nonce)
    sigs = sign_message(cut, signers)
    if case == "snapshot_signed":
        # The signers' signatures over a RateSnapshot with the same words do not carry a cut.
        other = snapshot_message(snapshots, market, cap, 0, 0, deadline)
        sigs = sign_message(other, signers)
    before = cap_state(engine, snapshots)
    with ape.reverts(message):
        snapshots.submit_funding_cap(funding_cap_args(cut), sigs, sender=relayer)
    assert cap_state(engine, snapshots) == before


def test_submit_funding_cap__replay__refused(engine, snapshots, funding_on, risk_signers, keeper):
    cut = funding_cap_message(snapshots, ETH, 10**14, ape.chain.blocks.head.timestamp + 600)
    sigs = sign_message(cut, risk_signers[:2])
    snapshots.submit_funding_cap(funding_cap_args(cut), sigs, sender=keeper)
    before = cap_state(engine, snapshots)
    with ape.reverts("snapshots: bad nonce"):
        snapshots.submit_funding_cap(funding_cap_args(cut), sigs, sender=keeper)
    assert cap_state(engine, snapshots) == before


@pytest.mark.parametrize(
    "primary, message",
    [
        (
            "RateSnapshot",
            {
                "asset": 4,
                "ratio": 105 * WAD // 100,
                "timestamp": 1_700_000_000,
                "max_growth_bps": 1_000,
                "nonce": 3,
                "deadline": 2**40,
            },
        ),
        ("FundingCap", {"market": 2, "cap": 10**14, "nonce": 5, "deadline": 2**40}),
    ],
)
def test_digest__equals_the_integration_kit(snapshots, chain, primary, message):
    """integration/eip712.json's message hashes to the digest the contract signs."""
    import json
    from pathlib import Path

    from eth_account.messages import encode_typed_data
    from eth_utils import keccak

    kit = json.loads((Path(__file__).resolve().parents[2] / "integration/eip712.json").read_text())
    m = kit["messages"][primary]
    signable = encode_typed_data(
        full_message={
            "types": m["types"],
            "primaryType": m["primaryType"],
            "domain": {
                **m["domain"],
                "chainId": chain.chain_id,
                "verifyingContract": str(snapshots.address),
            },
            "message": message,
        }
    )
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    view = getattr(snapshots, m["digest_view"])
    assert bytes(view(tuple(message.values()))) == expected
