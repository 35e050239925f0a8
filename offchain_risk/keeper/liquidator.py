"""Liquidate confirmed candidates: preview, size, price against gas, simulate, send.

For each candidate (largest shortfall first) the :class:`Liquidator`

1. skips it when a liquidation of the account is already in flight (pending in the store,
   this run or a previous one), or, with shared :mod:`~offchain_risk.keeper.workers` claims,
   when another worker holds the account: no duplicates;
2. asks ``Liquidations.liquidation_preview(account, 1.0)`` for the fraction the policy
   allows (the smallest that restores the target buffer, within the per-call cap), the
   reward and the liquidator's cost;
3. simulates ``liquidate`` from the keeper's address (``eth_estimateGas``): a transaction
   whose simulation fails is never sent, the revert reason is logged and counted;
4. checks that the reward (USD) pays the gas at the fee it would bid, times ``min_profit``;
5. sends it through the :class:`~offchain_risk.keeper.txs.TxManager`, or, in dry-run mode
   (no signer), logs what it would have sent (gas priced at zero: no key, no fee policy).

Previews and simulations of one block's candidates go out as two JSON-RPC batches, and
their sends as a third, on consecutive nonces (``TxManager.send_many``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from offchain_risk.keeper.rpc import Contracts, RpcError, decode_output, encode_call, rpc_batch
from offchain_risk.keeper.scanner import Candidate, Market
from offchain_risk.keeper.txs import SendError, TxManager
from offchain_risk.keeper.workers import Claims
from offchain_risk.units import WAD

log = logging.getLogger("ballast.keeper.liquidator")

KIND = "liquidation"


@dataclass(frozen=True)
class LiquidatorConfig:
    """``account``: the keeper's margin account that takes the slices (it must meet IM);
    ``gas_asset``: the asset whose oracle prices the gas token (devnet ETH = 0);
    ``min_profit``: reward / gas cost required; ``cost_slack_bps``: room on ``max_cost``;
    ``max_per_tick``: liquidations sent per block; ``gas_margin``: on the estimate."""

    account: int
    gas_asset: int = 0
    min_profit: float = 1.0
    cost_slack_bps: int = 100
    max_per_tick: int = 200
    gas_margin: float = 1.25

    def __post_init__(self) -> None:
        if self.min_profit < 0 or self.cost_slack_bps < 0 or self.max_per_tick < 1:
            raise ValueError("min_profit, cost_slack_bps >= 0 and max_per_tick >= 1")
        if self.gas_margin < 1:
            raise ValueError("gas_margin must be >= 1")


@dataclass(frozen=True)
class Action:
    account: int
    # sent | dry_run | in_flight | claimed (by another worker) | simulation_failed |
    # unprofitable | send_failed
    outcome: str
    fraction: int = 0
    reward: int = 0  # WAD USD
    gas_cost: int = 0  # WAD USD
    tx_hash: str | None = None
    reason: str = ""


class Liquidator:
    def __init__(
        self,
        contracts: Contracts,
        config: LiquidatorConfig,
        tx: TxManager | None = None,
        *,
        sender: str | None = None,
        claims: Claims | None = None,
    ):
        """``tx`` None: dry run; ``sender`` then names the address simulations run from.
        ``claims``: shared with the other workers (none: this process is the only one)."""
        self.c = contracts
        self.claims = claims
        self.config = config
        self.tx = tx
        self.sender = tx.address if tx is not None else sender
        if self.sender is None:
            raise ValueError("dry run needs the sender address to simulate from")
        self._dry_sent: set[int] = set()

    @property
    def dry_run(self) -> bool:
        return self.tx is None

    def in_flight(self) -> set[int]:
        if self.tx is None:
            return set()
        return {t.account for t in self.tx.in_flight(KIND) if t.account is not None}

    def run(self, candidates: list[Candidate], market: Market) -> list[Action]:
        """Liquidate ``candidates`` (in their order). Previews and simulations of all of
        them go out as two JSON-RPC batches, the sends as a third, in order."""
        busy = self.in_flight()
        actions: dict[int, Action] = {}
        todo = []
        for cand in candidates:
            if cand.account in busy:
                actions[cand.account] = Action(cand.account, "in_flight")
            elif len(todo) < self.config.max_per_tick:
                if self.claims is not None and not self.claims.claim(cand.account):
                    actions[cand.account] = Action(cand.account, "claimed")
                    continue
                todo.append(cand.account)
                busy.add(cand.account)
        liq = self.c.liquidations
        previews = rpc_batch(
            self.c.w3,
            [
                ("eth_call", [{"to": liq.address, "data": self._preview_data(a)}, "latest"])
                for a in todo
            ],
        )
        planned = []  # (account, fraction, reward, calldata)
        for account, answer in zip(todo, previews, strict=True):
            if isinstance(answer, RpcError):
                log.info("preview of %d reverts: %s", account, answer)
                actions[account] = Action(account, "simulation_failed", reason=f"preview: {answer}")
                continue
            p = decode_output(liq, "liquidation_preview", bytes.fromhex(answer.removeprefix("0x")))
            fraction, reward, cost = int(p["fraction"]), int(p["reward"]), int(p["cost"])
            slack = abs(cost) * self.config.cost_slack_bps // 10_000 + WAD
            args = (account, self.config.account, fraction, cost + slack)
            planned.append((account, fraction, reward, encode_call(liq, "liquidate", args)))
        # The simulation: eth_estimateGas of each liquidate from the keeper's address.
        estimates = rpc_batch(
            self.c.w3,
            [
                ("eth_estimateGas", [{"from": self.sender, "to": liq.address, "data": data}])
                for _, _, _, data in planned
            ],
        )
        sends = []  # (account, fraction, reward, gas_cost, data, gas): priced, to send
        for (account, fraction, reward, data), est in zip(planned, estimates, strict=True):
            if isinstance(est, RpcError):
                log.warning("simulation of liquidate(%d) fails: %s", account, est)
                actions[account] = Action(
                    account, "simulation_failed", fraction, reward, reason=str(est)
                )
                continue
            gas = int(int(est, 16) * self.config.gas_margin)
            priced = self._price(account, fraction, reward, gas, market)
            if isinstance(priced, Action):
                actions[account] = priced
            else:
                sends.append((account, fraction, reward, priced, data, gas))
        actions |= self._send(sends)
        if self.claims is not None:  # not sent: free for the next block, whoever takes it
            for a in todo:
                if actions[a].outcome != "sent":
                    self.claims.release(a)
        return [actions[c.account] for c in candidates if c.account in actions]

    def _preview_data(self, account: int) -> str:
        return encode_call(self.c.liquidations, "liquidation_preview", (account, WAD))

    def _price(
        self, account: int, fraction: int, reward: int, gas: int, market: Market
    ) -> Action | int:
        """The gas cost (WAD USD) at the fee the keeper would bid, or the Action that ends
        here: unprofitable, or a dry run."""
        max_fee = self.tx.fees()[0] if self.tx is not None else 0
        gas_price = int(market.prices_wad[self.config.gas_asset])
        gas_cost = gas * max_fee * gas_price // WAD  # WAD USD
        if reward < gas_cost * self.config.min_profit:
            log.info("skip %d: reward %d < gas %d (USD WAD)", account, reward, gas_cost)
            return Action(account, "unprofitable", fraction, reward, gas_cost)
        if self.tx is None:
            log.info(
                "dry run: would liquidate %d fraction=%d reward=%d gas=%d",
                account,
                fraction,
                reward,
                gas,
            )
            return Action(account, "dry_run", fraction, reward, gas_cost)
        return gas_cost

    def _send(self, sends: list[tuple[int, int, int, int, str, int]]) -> dict[int, Action]:
        """Send the priced liquidations ``(account, fraction, reward, gas_cost, calldata,
        gas)`` in order, on consecutive nonces, in one batch (``TxManager.send_many``)."""
        if not sends:
            return {}
        to = self.c.liquidations.address
        results = self.tx.send_many(KIND, [(to, data, gas, a) for a, _, _, _, data, gas in sends])
        out = {}
        for (account, fraction, reward, gas_cost, _, _), sent in zip(sends, results, strict=True):
            if isinstance(sent, SendError):
                log.warning("liquidate(%d) refused by the node: %s", account, sent)
                out[account] = Action(
                    account, "send_failed", fraction, reward, gas_cost, reason=str(sent)
                )
            else:
                out[account] = Action(account, "sent", fraction, reward, gas_cost, sent.hash)
        return out


def liquidator_account(owner: Any, sub_id: int = 0) -> int:
    from offchain_risk.chain import account_id

    return account_id(str(owner), sub_id)
