"""offchain_risk.keeper.signer against the chain: plan, sign, recover, submit, confirm."""

import numpy as np
import pytest
from conftest import BTC, ETH, WAD
from eip712.messages import hash_message
from eth_account import Account

from offchain_risk.keeper.signer import (
    FLOOR,
    HAIRCUT,
    PASSPHRASE_ENV,
    SECP256K1_N,
    ParamSet,
    RiskSigner,
    load_signer,
    update_tuple,
)
from offchain_risk.units import MAX_SCENARIOS as K

HOUR = 3_600
ASSETS = (0, 1, 2, 3)


def current(risk_signer) -> tuple[np.ndarray, list[int]]:
    view = risk_signer.view(ASSETS)
    return view.current.copy(), [int(x) for x in view.global_current]


def test_step__within_limits__one_step_round_trip(risk_signer, engine, liquidations):
    values, globals_ = current(risk_signer)
    values[ETH, :16] = np.minimum(values[ETH, :16] * 105 // 100, 20_000)  # tighter
    values[BTC, HAIRCUT] = 290  # haircut 300 -> 290: loosens 3.3%
    globals_[0] = 2 * WAD
    target = ParamSet.from_values(ASSETS, values, globals_)
    plan = risk_signer.step(target)
    assert plan.final and not plan.clipped
    assert np.array_equal(risk_signer.view(ASSETS).current, values)
    assert engine.im_multiplier() == 2 * WAD
    assert liquidations.max_discount() == globals_[2]


def test_step__k_below_16__pads_with_zero_shocks(lens, risk_signer, engine):
    values, globals_ = current(risk_signer)
    target = ParamSet(
        assets=np.array([ETH]),
        shocks_bps=np.array([[-1600, 1500, -1200, 1200, -800, 800, -2000, 1800]]),
        floor_bps=np.array([100]),
        haircut_bps=np.array([200]),
        im_multiplier_wad=globals_[0],
        min_discount_wad=globals_[1],
        max_discount_wad=globals_[2],
    )
    risk_signer.step(target)  # scenarios 8..15 go to zero
    got = lens.shocks(ETH)
    assert got[:8] == [-1600, 1500, -1200, 1200, -800, 800, -2000, 1800]
    # 100 bps per update toward 0 (5% of ETH's largest shock, 2,000)
    assert got[8:16] == [-200, 200, -900, 900, 0, 0, -500, 500]
    assert got[16:] == [0] * 16  # the second word stays zero


def test_step__k32_target__second_word_moves_at_the_row_allowance(lens, risk_signer, governor):
    values, globals_ = current(risk_signer)
    first = [int(x) for x in values[ETH, :16]]
    target = ParamSet(
        assets=np.array([ETH]),
        shocks_bps=np.array([first + [-300, 300] + [0] * 14]),
        floor_bps=np.array([values[ETH, FLOOR]]),
        haircut_bps=np.array([values[ETH, HAIRCUT]]),
        im_multiplier_wad=globals_[0],
        min_discount_wad=globals_[1],
        max_discount_wad=globals_[2],
    )
    plan = risk_signer.step(target)
    assert not plan.final  # 300 bps is three updates' allowance
    got = lens.shocks(ETH)
    assert got[:16] == first
    assert got[16:] == [-100, 100] + [0] * 14  # 5% of ETH's largest shock (2,000)
    view = governor.asset_view(ETH)
    assert (view.low[16], view.high[17]) == (-100, 100)


def test_step__target_beyond_rate__reached_in_steps(risk_signer, engine, chain):
    """30% looser shocks and a lower IM: the signer steps at the rate, one update per bucket,
    each confirmed on-chain, and lands exactly on the target."""
    values, globals_ = current(risk_signer)
    start = values.copy()
    values[ETH, :16] = values[ETH, :16] * 7 // 10
    globals_[0] = 13 * WAD // 10  # 1.5 -> 1.3
    target = ParamSet.from_values(ASSETS, values, globals_)
    steps = []
    for _ in range(20):
        plan = risk_signer.step(target)
        steps.append(risk_signer.view(ASSETS).current[ETH].copy())
        if plan.final:
            break
        chain.mine(timestamp=(chain.pending_timestamp // HOUR + 1) * HOUR + 1)
    assert plan.final
    assert np.array_equal(risk_signer.view(ASSETS).current, values)
    assert engine.im_multiplier() == 13 * WAD // 10
    assert 4 <= len(steps) <= 12
    # never more than the per-update allowance: 5% of the asset's largest |shock|
    prev = start[ETH]
    for held in steps:
        allow = max(np.abs(prev[:K]).max() * 5 // 100, 1)
        assert np.all(np.abs(held[:K] - prev[:K]) <= allow)
        prev = held


def test_plan__beyond_caps__clipped_into_bounds(risk_signer):
    values, globals_ = current(risk_signer)
    values[ETH, 0] = -10_000
    values[ETH, FLOOR] = 5_000  # floor cap is 2,000
    globals_[0] = 5 * WAD  # IM cap is 3
    plan = risk_signer.plan(ParamSet.from_values(ASSETS, values, globals_))
    assert plan.clipped
    assert plan.signed.values[ETH, FLOOR] == 2_000
    assert plan.signed.im_multiplier_wad == 3 * WAD
    # a shock moves by its allowance (100 bps); the floor 500 bps now, the rest ramps
    assert plan.signed.values[ETH, 0] == -1_600 and plan.applied[ETH, 0] == -1_600
    assert plan.applied[ETH, FLOOR] == 600


def test_step__ramping_update__confirms_ramp_target(risk_signer, governor):
    values, globals_ = current(risk_signer)
    values[ETH, HAIRCUT] = 1_500
    plan = risk_signer.step(ParamSet.from_values(ASSETS, values, globals_))
    assert plan.applied[ETH, HAIRCUT] == 700
    assert governor.asset_view(ETH).ramp_target[HAIRCUT] == 1_500


def test_step__many_steps_in_one_bucket__never_refused(risk_signer, lens, chain):
    """The planner stays inside the per-update and per-bucket allowances and the MM step:
    stepping again and again within one bucket never sends an update the chain refuses, and
    the shocks stop at the bucket's limit (ETH: 200 bps, 10% of its largest shock)."""
    chain.mine(timestamp=(chain.pending_timestamp // HOUR + 1) * HOUR + 1)
    values, globals_ = current(risk_signer)
    start = values.copy()
    values[ETH, :16] = values[ETH, :16] * 2  # far beyond every limit
    values[BTC, :16] = values[BTC, :16] // 2
    values[ETH, HAIRCUT] = 5_000
    target = ParamSet.from_values(ASSETS, values, globals_)
    for _ in range(4):
        plan = risk_signer.step(target)
        assert not plan.final
    held = risk_signer.view(ASSETS).current
    assert np.max(np.abs(held[ETH, :16] - start[ETH, :16])) == 200
    # BTC: 10% of the least largest |shock| held in the bucket (1,710 after the first step)
    assert np.max(np.abs(held[BTC, :16] - start[BTC, :16])) == 171
    assert held[ETH, HAIRCUT] == 700  # the haircut's budget; the rest ramps


def test_step__owner_override__steps_from_the_engines_values(risk_signer, engine, owner):
    """After the owner sets the IM multiplier on the engine, the planner lowers it from
    there at the rate (never from the governor's record)."""
    engine.set_im_multiplier(5 * WAD // 2, sender=owner)
    values, globals_ = current(risk_signer)
    globals_[0] = 3 * WAD // 2
    plan = risk_signer.step(ParamSet.from_values(ASSETS, values, globals_))
    assert engine.im_multiplier() == 5 * WAD // 2 * 95 // 100
    assert not plan.final


def test_sign__sorted_low_s_recovered_and_digest_matches_chain(risk_signer, governor):
    values, globals_ = current(risk_signer)
    message = risk_signer.message(ParamSet.from_values(ASSETS, values, globals_), 0, 2**40)
    sigs = risk_signer.sign(message)
    assert len(sigs) == 2 and all(len(s) == 65 for s in sigs)
    assert all(int.from_bytes(s[32:64], "big") <= SECP256K1_N // 2 for s in sigs)
    signers = [Account.recover_message(message.signable_message, signature=s) for s in sigs]
    assert [int(a, 16) for a in signers] == sorted(int(a, 16) for a in signers)
    assert governor.update_digest(update_tuple(message)) == hash_message(message)


def test_signer__relayer_is_a_signer__refused(governor, engine, liquidations, risk_signers):
    with pytest.raises(ValueError, match="relayer"):
        RiskSigner(governor, engine, liquidations, risk_signers[:2], risk_signers[0])


def test_load_signer__keyfile_with_env_passphrase__signs_on_chain(
    lens, governor, engine, liquidations, risk_signers, keeper, owner, monkeypatch, tmp_path
):
    from ape import accounts
    from ape_accounts import import_account_from_private_key

    # The keyfile goes to a temporary accounts folder, never the user's ~/.ape/accounts.
    monkeypatch.setitem(accounts.containers["accounts"].__dict__, "data_folder", tmp_path)
    alias = "ballast-test-risk-signer"
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    account = import_account_from_private_key(alias, "correct horse", "0x" + "5e" * 32)
    assert account.keyfile_path.parent == tmp_path
    with pytest.raises(RuntimeError, match=PASSPHRASE_ENV):
        load_signer(alias)
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    signer = load_signer(alias)
    governor.add_signer(signer, sender=owner)
    client = RiskSigner(governor, engine, liquidations, [signer, risk_signers[2]], keeper)
    values, globals_ = current(client)
    values[ETH, HAIRCUT] = 250
    client.step(ParamSet.from_values(ASSETS, values, globals_))
    assert lens.asset_config(ETH).haircut_bps == 250
