"""The margin model of DESIGN.md, vectorised over accounts: the contract's twin.

Two paths:

* :func:`margin_exact` works on Python ints (numpy ``object`` arrays) and reproduces
  ``ledger._margin`` to the wei: the same sums, one rounding per quantity, equity
  rounded down and losses / margin rounded up.
* :func:`margin_float` is the float64 fast path for analytics and scanning
  (``exposures_usd @ shocks``); it agrees with the exact path to float precision.

Units follow the chain: WAD (10**18) fixed point for sizes, prices and cash; bps for
shocks, floor rates and haircuts. Shapes are in the names: ``(n_accounts, n_assets)``,
``(n_assets, K)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.units import BPS, MAX_PRICE, MAX_SCENARIOS, WAD, WAD_BPS, pack_shock_words

MIN_SHOCK_BPS = -10_000
MAX_SHOCK_BPS = 32_767


@dataclass(frozen=True)
class RiskParams:
    """On-chain risk parameters of every listed asset.

    floor_bps: (n_assets,) on-chain floor rate per unit of gross exposure.
    haircut_bps: (n_assets,) liquidity haircut on collateral value.
    shocks_bps: (n_assets, K) joint scenario shocks, K <= 32.
    im_multiplier_wad: IM / MM as WAD.
    """

    floor_bps: np.ndarray
    haircut_bps: np.ndarray
    shocks_bps: np.ndarray
    im_multiplier_wad: int

    def __post_init__(self) -> None:
        n = len(self.floor_bps)
        shocks = np.asarray(self.shocks_bps)
        if shocks.ndim != 2 or shocks.shape[0] != n or shocks.shape[1] > MAX_SCENARIOS:
            raise ValueError(
                f"shocks_bps must be (n_assets={n}, K<={MAX_SCENARIOS}), got {shocks.shape}"
            )
        if len(self.haircut_bps) != n:
            raise ValueError("haircut_bps must have one entry per asset")
        if shocks.size and (shocks.min() < MIN_SHOCK_BPS or shocks.max() > MAX_SHOCK_BPS):
            raise ValueError("shocks_bps outside [-10000, 32767]")
        if not WAD <= self.im_multiplier_wad <= 10 * WAD:
            raise ValueError("im_multiplier_wad outside [1, 10] WAD")

    @property
    def n_assets(self) -> int:
        return len(self.floor_bps)


@dataclass(frozen=True)
class QuotePeg:
    """The quote (cash) asset's feed and depeg rule (``ledger._peg_margin``).

    price_wad: the quote's USD feed price as last reported (WAD); 0 when the feed answers
    nothing (no live term). peg_rate_bps: the standing depeg scenario, the quote word's
    floor bps. Positive cash adds ``cash * (max(1 - q, 0) + peg_rate)`` to IM, rounded up.
    """

    price_wad: int
    peg_rate_bps: int = 0

    def __post_init__(self) -> None:
        if not 0 <= int(self.price_wad) <= MAX_PRICE:
            raise ValueError(f"quote price {self.price_wad} outside [0, MAX_PRICE]")
        if not 0 <= int(self.peg_rate_bps) <= BPS:
            raise ValueError(f"peg rate {self.peg_rate_bps} bps outside [0, 10000]")

    @property
    def rate(self) -> int:
        """IM per unit of positive cash, WAD * BPS."""
        q = int(self.price_wad)
        live = (WAD - q) * BPS if 0 < q < WAD else 0
        return int(self.peg_rate_bps) * WAD + live


def peg_margin(cash: np.ndarray, quote: QuotePeg | None) -> np.ndarray:
    """The quote's peg-loss term of IM: (n_accounts,) WAD ints, 0 without a quote feed."""
    cash = np.asarray(cash, dtype=object)
    if quote is None:
        return np.zeros(cash.shape, dtype=object)
    return ceil_div(np.maximum(cash, 0) * quote.rate, WAD_BPS)


@dataclass(frozen=True)
class MarginResult:
    """Per-account results, Python ints (WAD). health = equity - mm."""

    equity: np.ndarray
    mm: np.ndarray
    im: np.ndarray

    @property
    def health(self) -> np.ndarray:
        return self.equity - self.mm

    def summary(self) -> str:
        n = len(self.equity)
        liquidatable = int(np.sum(self.health < 0))
        below_im = int(np.sum(self.equity < self.im))
        return f"{n} accounts: {liquidatable} below MM, {below_im} below IM"


def _ints(a, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=object)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    for v in arr.flat:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must hold integers (WAD), got {type(v).__name__}")
    return np.vectorize(int, otypes=[object])(arr) if arr.size else arr


def floor_div(x: np.ndarray, d: int) -> np.ndarray:
    """Division rounding to -inf (Python ``//`` on ints): equity."""
    return x // d


def ceil_div(x: np.ndarray, d: int) -> np.ndarray:
    """Division rounding to +inf: losses and margin."""
    return -((-x) // d)


def trunc_div(x: int, d: int) -> int:
    """EVM ``sdiv``: division truncating towards zero (d > 0)."""
    q = abs(x) // d
    return q if x >= 0 else -q


def margin_numerators(
    collateral: np.ndarray,
    size: np.ndarray,
    prices_wad: np.ndarray,
    params: RiskParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ledger._margin``'s sums before any rounding, all WAD * WAD * BPS, for n accounts:
    value_num (n,) = sum(coll * p * (BPS - h) + size * p * BPS), floor_num (n,) =
    sum((coll + |size|) * p * floor_bps) and the scenario losses (n, K) =
    -sum((coll + size) * p * shock_k). collateral, size: (n_accounts, n_assets) WAD ints;
    prices_wad: (n_assets,). The option book joins its legs to these
    (:func:`offchain_risk.models.options.margin_with_options_exact`)."""
    n_assets = params.n_assets
    n = np.shape(size)[0]
    coll = _ints(collateral, (n, n_assets), "collateral")
    size = _ints(size, (n, n_assets), "size")
    price = _ints(prices_wad, (n_assets,), "prices_wad")
    if any(c < 0 for c in coll.flat):
        raise ValueError("collateral must be non-negative")
    haircut = _ints(params.haircut_bps, (n_assets,), "haircut_bps")
    floor_rate = _ints(params.floor_bps, (n_assets,), "floor_bps")
    shocks = np.asarray(params.shocks_bps, dtype=object).astype(object)

    # Products below are exact Python ints: (n, n_assets) * (n_assets,).
    value_num = ((coll * (BPS - haircut) + size * BPS) * price).sum(axis=1)  # (n,)
    floor_num = ((coll + np.abs(size)) * price * floor_rate).sum(axis=1)  # (n,)
    exposure = (coll + size) * price  # (n, n_assets), WAD * WAD
    losses = -(exposure.dot(shocks)) if shocks.shape[1] else np.zeros((n, 0), dtype=object)
    return value_num, floor_num, losses


def margin_exact(
    cash: np.ndarray,
    collateral: np.ndarray,
    size: np.ndarray,
    open_notional: np.ndarray,
    prices_wad: np.ndarray,
    params: RiskParams,
    quote: QuotePeg | None = None,
    funding_owed: np.ndarray | None = None,
) -> MarginResult:
    """Exact margin for n accounts, equal to ``ledger._margin`` to the wei.

    cash: (n_accounts,); collateral, size, open_notional: (n_accounts, n_assets);
    prices_wad: (n_assets,). All WAD ints. quote: the quote asset's feed and peg rate once
    it has a feed (IM only, :func:`peg_margin`). funding_owed: (n_accounts,) unsettled
    funding the positions owe (``offchain_risk.models.funding.owed_exact``), taken off equity.
    """
    cash = _ints(cash, np.shape(cash), "cash")
    n = len(cash)
    coll = _ints(collateral, (n, params.n_assets), "collateral")
    size = _ints(size, (n, params.n_assets), "size")
    on = _ints(open_notional, (n, params.n_assets), "open_notional")
    value_num, floor_num, losses = margin_numerators(coll, size, prices_wad, params)
    worst = ceil_div(floor_num, WAD_BPS)
    if losses.shape[1]:
        worst = np.maximum(worst, ceil_div(losses, WAD_BPS).max(axis=1))  # (n,)
    mm = np.maximum(worst, 0)
    im = ceil_div(mm * params.im_multiplier_wad, WAD) + peg_margin(cash, quote)
    equity = cash - on.sum(axis=1) + floor_div(value_num, WAD_BPS)
    if funding_owed is not None:
        equity = equity - _ints(funding_owed, (n,), "funding_owed")
    return MarginResult(equity=equity, mm=mm, im=im)


def margin_float(
    exposures_usd: np.ndarray,
    gross_usd: np.ndarray,
    shocks_bps: np.ndarray,
    floor_bps: np.ndarray,
    im_multiplier: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fast path: (mm, im) in USD for many accounts at once.

    exposures_usd: (n_accounts, n_assets) net exposure (collateral + perp) * price;
    gross_usd: (n_accounts, n_assets) (collateral + |perp|) * price;
    shocks_bps: (n_assets, K); floor_bps: (n_assets,).
    """
    exposures_usd = np.asarray(exposures_usd, dtype=np.float64)
    gross_usd = np.asarray(gross_usd, dtype=np.float64)
    if exposures_usd.ndim != 2 or gross_usd.shape != exposures_usd.shape:
        raise ValueError("exposures_usd and gross_usd must be equal (n_accounts, n_assets)")
    shocks = np.asarray(shocks_bps, dtype=np.float64)
    if shocks.shape[0] != exposures_usd.shape[1]:
        raise ValueError("shocks_bps must be (n_assets, K)")
    if not np.all(np.isfinite(exposures_usd)) or not np.all(np.isfinite(gross_usd)):
        raise ValueError("exposures must be finite")
    losses = exposures_usd @ (shocks * -1e-4)  # (n_accounts, K)
    floor = gross_usd @ (np.asarray(floor_bps, dtype=np.float64) * 1e-4)  # (n_accounts,)
    worst = losses.max(axis=1) if shocks.shape[1] else np.zeros(len(floor))
    mm = np.maximum(np.maximum(worst, floor), 0.0)
    return mm, mm * im_multiplier


def pack_shocks(shocks_bps: np.ndarray) -> list[list[int]]:
    """(n_assets, K) -> per asset its two uint256 words (``engine.shock_word(asset, w)``):
    scenario k as int16 in bits 16j..16j+15 of word k // 16, j = k % 16. K <= 16 leaves the
    second word zero. A signed update carries them flattened (:func:`flat_words`)."""
    shocks = np.asarray(shocks_bps)
    if shocks.ndim != 2 or shocks.shape[1] > MAX_SCENARIOS:
        raise ValueError(f"shocks_bps must be (n_assets, K<={MAX_SCENARIOS})")
    words = []
    for row in shocks:
        values = [int(v) for v in row]
        for s in values:
            if not MIN_SHOCK_BPS <= s <= MAX_SHOCK_BPS:
                raise ValueError(f"shock {s} bps outside [-10000, 32767]")
        words.append(pack_shock_words(values))
    return words


def flat_words(words: list[list[int]]) -> list[int]:
    """Per-asset shock words as a signed update and ``BareRiskManager.write`` carry them:
    asset i's word w at ``2i + w``."""
    return [w for pair in words for w in pair]


def pad_scenarios(shocks_bps: np.ndarray) -> np.ndarray:
    """(n_assets, K) -> (n_assets, 32): the chain's unused scenarios move nothing (a zero
    shock's linear loss is zero; an all-zero second word leaves scenarios 16..31 out of the
    option book's valuation, see ``OptionBook.Market``)."""
    shocks = np.asarray(shocks_bps, dtype=np.int64)
    out = np.zeros((shocks.shape[0], MAX_SCENARIOS), dtype=np.int64)
    out[:, : shocks.shape[1]] = shocks
    return out


def apply_trade(size: int, open_notional: int, cash: int, d_size: int, flow: int):
    """The contract's position accounting (``fixed_math._apply_trade``), exactly.

    Returns the new (size, open_notional, cash) after trading ``d_size`` for the
    signed cash flow ``flow``. cash - open_notional moves by exactly ``flow``.
    """
    if size == 0 or (size > 0) == (d_size > 0):
        return size + d_size, open_notional - flow, cash
    if abs(d_size) <= abs(size):
        removed = trunc_div(open_notional * abs(d_size), abs(size))
        return size + d_size, open_notional - removed, cash + flow - removed
    close_flow = trunc_div(flow * abs(size), abs(d_size))
    return size + d_size, -(flow - close_flow), cash + close_flow - open_notional
