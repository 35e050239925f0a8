"""The keeper's plain, testable parts; a bot runtime only wires them.

``signer``: signed risk-parameter updates for the chain's ``RiskGovernor``.
"""

from offchain_risk.keeper.signer import (
    PASSPHRASE_ENV,
    AssetBounds,
    ChainView,
    GlobalBounds,
    Limits,
    ParamSet,
    RiskSigner,
    RiskUpdate,
    StepPlan,
    load_signer,
)

__all__ = [
    "PASSPHRASE_ENV",
    "AssetBounds",
    "ChainView",
    "GlobalBounds",
    "Limits",
    "ParamSet",
    "RiskSigner",
    "RiskUpdate",
    "StepPlan",
    "load_signer",
]
