"""VolFeed.vol against its twin (offchain_risk.keeper.vol_signer.curve_vol), in titanoboa:
random curves signed 2 of 3 and random strikes, equal to the wei, and (0, False) exactly
where the twin refuses the strike."""

import random

import boa
from boa_stack import CONTRACTS
from eip712.messages import EIP712Domain
from eth_account import Account

from offchain_risk.chain import signature_bytes
from offchain_risk.keeper.vol_signer import (
    EXPIRY_TIME,
    MAX_CURVATURE,
    MAX_SKEW,
    VolUpdate,
    curve_vol,
    update_tuple,
)
from offchain_risk.units import DAY, MAX_VOL, MIN_VOL, WAD

KEYS = sorted(
    (Account.from_key((1_000 + i).to_bytes(32, "big")) for i in range(3)),
    key=lambda a: int(a.address, 16),
)


def test_vol__random_curves_and_strikes__equal_the_twin_to_the_wei():
    feed = boa.load(str(CONTRACTS / "VolFeed.vy"), [k.address for k in KEYS], 2)
    feed.set_underlying(0, 3_600)
    _, name, version, chain_id, verifying, _, _ = feed.eip712Domain()
    domain = EIP712Domain(
        name=name, version=version, chainId=chain_id, verifyingContract=str(verifying)
    )
    rng = random.Random(19)
    now = boa.env.evm.patch.timestamp
    expiry = (now // DAY + 30) * DAY + EXPIRY_TIME
    checked = refused = 0
    for nonce in range(60):
        boa.env.time_travel(seconds=1)
        forward = int(10 ** rng.uniform(-6, 9) * WAD)
        curve = dict(
            underlying=0,
            expiry=expiry,
            atm_vol=rng.randint(MIN_VOL, MAX_VOL),
            skew=rng.randint(-MAX_SKEW, MAX_SKEW),
            curvature=rng.randint(0, MAX_CURVATURE),
            forward=forward,
        )
        message = VolUpdate(
            **curve,
            observed_at=boa.env.evm.patch.timestamp,
            nonce=nonce,
            deadline=2**40,
            eip712_domain=domain,
        )
        sigs = [signature_bytes(k.sign_message(message.signable_message)) for k in KEYS[:2]]
        feed.submit(update_tuple(message), sigs)
        for _ in range(5):
            strike = int(forward * 10 ** rng.uniform(-4.5, 4.5))
            want = curve_vol(curve["atm_vol"], curve["skew"], curve["curvature"], forward, strike)
            got = feed.vol(0, expiry, strike)
            if want is None:
                assert tuple(got) == (0, False)
                refused += 1
            else:
                assert tuple(got) == (want, True)
                checked += 1
    assert checked >= 200 and refused > 0
