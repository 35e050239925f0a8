# pragma version ~=0.4.3
"""
@title Bare risk manager (test only)
@notice The engine's share of a signed risk update, alone: for each asset it
        reads the shock and asset words (as the governor does) and sets the
        shock word, with no signature, check or storage of its own. The gas
        benchmark runs it beside RiskGovernor to separate the governor's cost
        from the engine's.
@custom:security Never deploy outside a devnet: installed as the engine's risk
                 manager, it lets anyone set any shocks.
"""

from ..interfaces import IRiskEngine


@external
def write(
    engine: IRiskEngine,
    assets: DynArray[uint256, 32],
    words: DynArray[uint256, 64],
):
    """
    @notice Set `words` as the shocks of `assets` on `engine`: two words per
            asset, asset i's at 2i and 2i + 1 (as a signed update carries them).
    """
    for i: uint256 in range(32):
        if i == len(assets):
            break
        a: uint256 = assets[i]
        new: uint256[2] = [words[2 * i], words[2 * i + 1]]
        current: uint256[2] = [
            staticcall engine.shock_word(a, 0),
            staticcall engine.shock_word(a, 1),
        ]
        risk: uint256 = staticcall engine.asset_word(a)
        if (new[0] != current[0] or new[1] != current[1]) and risk != 0:
            extcall engine.set_shock_words(a, new)
