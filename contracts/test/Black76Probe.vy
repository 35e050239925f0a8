# pragma version ~=0.4.3
"""
@title Black-76 probe
@notice Exposes the stateless pricing module `black76` to tests and
        benchmarks; never deployed outside them. The `*_gas` functions also
        return the gas the module itself used (from `msg.gas` around the
        internal call), which the benchmarks report.
"""

from .. import black76


@external
@pure
def price(
    f: uint256,
    k: uint256,
    sigma: uint256,
    tau: uint256,
    is_call: bool,
    roundup: bool,
) -> uint256:
    return black76._price(f, k, sigma, tau, is_call, roundup)


@external
@pure
def valuation(
    f: uint256, k: uint256, sigma: uint256, tau: uint256, is_call: bool
) -> black76.Valuation:
    return black76._valuation(f, k, sigma, tau, is_call)


@external
@pure
def cdf(x: int256) -> int256:
    return black76._cdf(x, black76._pdf(x))


@external
@pure
def pdf(x: int256) -> int256:
    return black76._pdf(x)


@external
@view
def price_gas(
    f: uint256,
    k: uint256,
    sigma: uint256,
    tau: uint256,
    is_call: bool,
    roundup: bool,
) -> (uint256, uint256):
    g: uint256 = msg.gas
    v: uint256 = black76._price(f, k, sigma, tau, is_call, roundup)
    return v, g - msg.gas


@external
@view
def valuation_gas(
    f: uint256, k: uint256, sigma: uint256, tau: uint256, is_call: bool
) -> (black76.Valuation, uint256):
    g: uint256 = msg.gas
    v: black76.Valuation = black76._valuation(f, k, sigma, tau, is_call)
    return v, g - msg.gas
