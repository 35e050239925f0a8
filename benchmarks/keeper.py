"""Keeper benchmarks on anvil: scan time per block and shock-to-last-liquidation latency.

For each book size: deploy the devnet listing, open the accounts through the test-only
``Seeder`` venue (the engine's own ``deposit`` and ``settle``, 100 accounts per transaction,
so every account is logged and checked as a real one), backfill a keeper, time its scan on
quiet blocks, then drop ETH 30% and mine block by block (automine off, anvil's default
30M block gas limit) until no account is liquidatable.

Every account is long 1 ETH bought at 2,000 with cash uniform in [620, 1,500] USD (seeded
RNG): after the shock to 1,400, MM = 280 and E = cash - 600, so about 30% are liquidatable.

On the shock block, before the keeper's first tick, the scan runs once per confirmation
strategy (``Scanner`` ``confirm``: the exact twin, ``healths`` over concurrent batches,
``healths`` in one batch), in rotation, ``ROUNDS`` times each; every strategy must find the
same liquidatable set.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offchain_risk import devnet
from offchain_risk.chain import account_id
from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.rpc import Contracts
from offchain_risk.keeper.scanner import CONFIRM_MODES
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import LocalSigner, TxManager
from offchain_risk.keeper.workers import Partition
from offchain_risk.units import WAD

USDC = 10**6
ETH = 0
PER_TX = 100
ROUNDS = 3
WORKERS = (1, 2, 4)
LIQUIDATE_MAX = 10_000  # larger books: index and scans only


def start_anvil(port: int, *extra: str, timeout: float = 30) -> subprocess.Popen:
    """anvil on ``port`` with the base fee and gas price Ape's own launch uses (zero), the
    default test mnemonic (Ape's test accounts), no step tracing, and ``extra`` options;
    waits until it listens."""
    node = subprocess.Popen(
        [
            "anvil",
            "--port",
            str(port),
            "--silent",
            "--block-base-fee-per-gas",
            "0",
            "--gas-price",
            "0",
            "--hardfork",
            "cancun",
            *extra,
        ]
    )
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return node
        except OSError:
            if time.time() > deadline or node.poll() is not None:
                node.kill()
                raise RuntimeError(f"anvil did not start on port {port}") from None
            time.sleep(0.2)


@dataclass
class KeeperRun:
    accounts: int
    seed_s: float
    backfill_s: float
    scan_numpy_ms: float  # quiet block, median
    scan_chain_ms: float  # quiet block: prices and parameters + confirmations
    shock_numpy_ms: float  # the block after the shock
    shock_chain_ms: float
    flagged: int
    liquidatable: int
    liquidations: int
    unprofitable: int  # of the first round: reward below gas x (2 base fee + 1 gwei tip)
    blocks: int  # from the shock's block to the block of the last liquidation
    seconds: float  # from the shock to the last liquidation's receipt
    gas_per_block: int
    strategies: dict  # confirm mode -> median shock-block scan ms (all parts)
    partitions: dict  # workers -> slowest partition's shock-block scan ms (twin)
    shock_decide_ms: float = 0.0  # the twins' decisions on the shock block
    anvil_mb: float = -1.0  # anvil's resident memory once the book is seeded


def _liquidatable(engine, accounts) -> int:
    n = 0
    for i in range(0, len(accounts), 100):
        part = accounts[i : i + 100]
        n += sum(1 for m in engine.healths(part) if m.equity < m.mm)
    return n


def run_one(
    project,
    test_accounts,
    w3,
    n: int,
    quiet_blocks: int = 5,
    liquidate: bool = True,
    node_pid: int | None = None,
) -> KeeperRun:
    """One book of ``n`` accounts; ``liquidate`` False stops after the shock block's scans
    (no liquidation run: 100,000 accounts would take hours of sends on anvil).
    ``node_pid``: anvil's process, whose memory is read once the book is seeded."""
    owner, bot = test_accounts[0], test_accounts[4]
    d, accounts, seed_s = seed_book(project, owner, w3, n)
    anvil_mb = rss_mb(node_pid) if node_pid else -1.0
    d.cash.mint(bot, 10**9 * USDC, sender=owner)
    d.cash.approve(d.engine, 10**9 * USDC, sender=bot)
    d.engine.deposit(account_id(str(bot), 0), d.cash, 10**9 * USDC, sender=bot)

    c = Contracts.from_project(
        project, w3, d.engine.address, d.liquidations.address, d.lens.address
    )
    store = Store(":memory:")
    keeper = Keeper(
        c,
        store,
        # A backstop keeper: every liquidatable account is liquidated, profitable or not;
        # the unprofitable ones at a 1 gwei tip are counted below. At most max_per_tick (the
        # default, 200: about a block's gas) are sent a block: sending every one at once put
        # 29,487 transactions in flight at 100,000 accounts, which each tick then re-read.
        LiquidatorConfig(account=account_id(str(bot), 0), min_profit=0),
        tx=TxManager(w3, LocalSigner(bot.private_key), store),
        sender=str(bot),
        chunk=5_000,
    )
    t0 = time.perf_counter()
    keeper.tick()
    backfill_s = time.perf_counter() - t0
    assert len(keeper.book) >= n, (len(keeper.book), n)
    quiet = []
    for _ in range(quiet_blocks):
        w3.provider.make_request("evm_mine", [])
        quiet.append(keeper.tick().scan)
    d.set_price("ETH", 1_400, sender=owner)
    expected = _liquidatable(d.engine, accounts)
    strategies, partitions = compare_strategies(keeper, w3, expected)
    if not liquidate:
        shock, _ = keeper.scanner.scan(block=w3.eth.block_number)
        return KeeperRun(
            accounts=n,
            seed_s=seed_s,
            backfill_s=backfill_s,
            scan_numpy_ms=statistics.median(s.numpy_ms for s in quiet),
            scan_chain_ms=statistics.median(s.chain_ms for s in quiet),
            shock_numpy_ms=shock.numpy_ms,
            shock_chain_ms=shock.chain_ms,
            flagged=shock.flagged,
            liquidatable=expected,
            liquidations=-1,
            unprofitable=-1,
            blocks=-1,
            seconds=-1.0,
            gas_per_block=0,
            strategies=strategies,
            partitions=partitions,
            shock_decide_ms=shock.exact_ms,
            anvil_mb=anvil_mb,
        )
    rpc = w3.provider.make_request
    rpc("evm_setAutomine", [False])
    shock_block = w3.eth.block_number
    t0 = time.perf_counter()
    first = None
    last_block, last_t, gas = shock_block, t0, []
    try:
        for _ in range(200):
            tick = keeper.tick()
            if tick.error is not None:  # the node timed out under load: tick again
                continue
            first = first or tick
            if tick.poll is not None:
                for t in tick.poll.confirmed:
                    last_block, last_t = max(last_block, t.mined_block or 0), time.perf_counter()
            if not tick.scan.confirmed and not keeper.tx.in_flight():
                break
            rpc("evm_mine", [])
            gas.append(w3.eth.get_block("latest")["gasUsed"])
    finally:
        rpc("evm_setAutomine", [True])
    assert _liquidatable(d.engine, accounts) == 0
    sent = store.txs(kind="liquidation")
    return KeeperRun(
        accounts=n,
        seed_s=seed_s,
        backfill_s=backfill_s,
        scan_numpy_ms=statistics.median(s.numpy_ms for s in quiet),
        scan_chain_ms=statistics.median(s.chain_ms for s in quiet),
        shock_numpy_ms=first.scan.numpy_ms,
        shock_chain_ms=first.scan.chain_ms,
        flagged=first.scan.flagged,
        liquidatable=expected,
        liquidations=sum(1 for t in sent if t.status == "confirmed"),
        unprofitable=sum(1 for a in first.actions if a.reward < a.gas_cost),
        blocks=last_block - shock_block,
        seconds=last_t - t0,
        gas_per_block=max(gas) if gas else 0,
        strategies=strategies,
        partitions=partitions,
        shock_decide_ms=first.scan.exact_ms,
        anvil_mb=anvil_mb,
    )


def rss_mb(pid: int) -> float:
    """Resident memory in MB of a process and its children (Linux ``/proc``): the ``anvil``
    on PATH is a node launcher whose child is the node itself."""
    total = 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        total += int(rss_mb(int(child)) * 1024)
    return total / 1024


def seed_book(project, owner, w3, n: int) -> tuple:
    """Deploy the devnet listing and open ``n`` accounts through the ``Seeder`` venue: the
    deployment, the account ids and the seconds the accounts took."""
    d = devnet.deploy(project, owner)
    seeder = project.Seeder.deploy(d.engine, d.cash, sender=owner)
    d.engine.set_venue(seeder, True, sender=owner)
    rng = np.random.default_rng(0)
    cash = [int(c * USDC) for c in rng.uniform(620, 1_500, n)]
    maker_cash = 10**9 * USDC
    d.cash.mint(seeder, maker_cash + sum(cash), sender=owner)
    seeder.approve_engine(maker_cash + sum(cash), sender=owner)
    seeder.fund(0, maker_cash, sender=owner)
    t0 = time.perf_counter()
    _seed(w3, seeder, owner, cash)
    seed_s = time.perf_counter() - t0
    return d, [account_id(str(seeder.address), 1 + i) for i in range(n)], seed_s


def _seed(w3, seeder, owner, cash: list[int]) -> None:
    """``seeder.seed`` in transactions of ``PER_TX`` accounts, sent from the node's unlocked
    test key with raw JSON-RPC (Ape's receipt handling of 200 logs a transaction costs about
    2 s each); every receipt must succeed."""
    data = []
    for i in range(0, len(cash), PER_TX):
        args = (1 + i, cash[i : i + PER_TX], ETH, WAD, 2_000 * WAD, 0)
        data.append(seeder.seed.encode_input(*args))
    hashes = []
    for calldata in data:
        tx = {"from": str(owner), "to": str(seeder.address), "data": _hex(calldata)}
        tx["gas"] = hex(29_000_000)
        hashes.append(w3.provider.make_request("eth_sendTransaction", [tx])["result"])
    for h in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(h, timeout=600, poll_latency=0.05)
        assert receipt["status"] == 1, receipt


def _hex(data) -> str:
    return data if isinstance(data, str) else "0x" + bytes(data).hex()


def compare_strategies(keeper: Keeper, w3, expected: int) -> tuple[dict, dict]:
    """Median shock-block scan time (ms) of each confirmation strategy, measured in
    rotation on the same block (each must confirm ``expected`` accounts); and, for 1, 2 and
    4 workers, the slowest partition's scan (default strategy), each partition measured
    alone: what one worker spends per block when the book is split that many ways."""
    head = keeper.indexer.sync(w3.eth.block_number).head
    times: dict[str, list[float]] = {m: [] for m in CONFIRM_MODES}
    found: dict[str, set[int]] = {}
    for _ in range(ROUNDS):
        for mode in CONFIRM_MODES:
            scan, _ = keeper.scanner.scan(block=head, confirm=mode)
            times[mode].append(scan.total_ms)
            found[mode] = {c.account for c in scan.confirmed}
            assert len(scan.confirmed) == expected, (mode, len(scan.confirmed), expected)
    assert all(f == found["chain"] for f in found.values())
    parts: dict[int, float] = {}
    for workers in WORKERS:
        per = []
        seen: set[int] = set()
        for k in range(workers):
            rounds = []
            for _ in range(ROUNDS):
                scan, _ = keeper.scanner.scan(block=head, partition=Partition(k, workers))
                rounds.append(scan.total_ms)
            per.append(statistics.median(rounds))
            seen |= {c.account for c in scan.confirmed}
        assert seen == found["chain"]  # the partitions cover the book, once
        parts[workers] = max(per)
    return {m: statistics.median(t) for m, t in times.items()}, parts


def _opt(x: float, fmt: str) -> str:
    return "-" if x < 0 else format(x, fmt)


def render(runs: list[KeeperRun], load: str = "", synthetic: list[dict] = ()) -> str:
    lines = [
        "## Keeper (anvil)",
        "",
        "`python -m benchmarks --keeper`. Accounts are opened through the test-only `Seeder` "
        "venue (the engine's own `deposit` + `settle`, 100 accounts per transaction), so the "
        "keeper indexes real `AccountState` logs. Scan = float64 twin over every account "
        "(numpy) + the twins' decisions on the flagged accounts (decide: float where it is "
        "sure, exact `margin_exact` within its tolerance of MM) + prices and parameters "
        "(chain). Shock: ETH -30%, blocks mined one at a time (anvil's 30M gas limit). "
        "Rows with - are indexed and scanned only (no liquidation run; "
        f"`--keeper-liquidate-max`, {LIQUIDATE_MAX:,} by default)."
        + (f" Machine load during the run: {load}." if load else ""),
        "",
        "| accounts | seed s | anvil MB | backfill s | quiet scan: numpy ms | quiet scan: chain ms "
        "| shock scan: numpy ms | shock: decide ms | shock scan: chain ms | liquidatable "
        "| liquidations | blocks to last | seconds to last | max gas / block |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.accounts:,} | {r.seed_s:.1f} | {_opt(r.anvil_mb, ',.0f')} "
            f"| {r.backfill_s:.2f} | {r.scan_numpy_ms:.2f} "
            f"| {r.scan_chain_ms:.1f} | {r.shock_numpy_ms:.2f} | {r.shock_decide_ms:.1f} "
            f"| {r.shock_chain_ms:.1f} | {r.liquidatable:,} "
            f"| {'-' if r.liquidations < 0 else f'{r.liquidations:,}'} "
            f"| {'-' if r.blocks < 0 else r.blocks} | {_opt(r.seconds, '.1f')} "
            f"| {r.gas_per_block:,} |"
        )
    lines += [
        "",
        "Shock block, confirmation strategies side by side (whole scan: market read, float "
        f"twin, decisions; median of {ROUNDS} rotations on the same block, so the load is "
        "shared):",
        "",
        "| accounts | flagged | twins (default) ms | exact twin for all ms "
        "| `healths`, 4 concurrent batches ms | `healths`, one batch ms "
        "| one batch / twins |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        st = r.strategies
        lines.append(
            f"| {r.accounts:,} | {r.flagged:,} | {st['twin']:.0f} "
            f"| {_opt(st.get('exact', -1), '.0f')} "
            f"| {st['parallel']:.0f} | {st['chain']:.0f} | {st['chain'] / st['twin']:.1f}x |"
        )
    lines += [
        "",
        "Shock block split over workers: the slowest partition's scan (twins), each "
        "partition measured alone on the same block, i.e. what one worker spends per block "
        "when the book is split that many ways (every worker still reads the market):",
        "",
        "| accounts | " + " | ".join(f"{w} worker(s) ms" for w in WORKERS) + " |",
        "| ---: | " + " | ".join("---:" for _ in WORKERS) + " |",
    ]
    for r in runs:
        lines.append(
            f"| {r.accounts:,} | "
            + " | ".join(_opt(r.partitions.get(w, -1), ".0f") for w in WORKERS)
            + " |"
        )
    if synthetic:
        base = synthetic[0].get("baseline")
        lines += [
            "",
            "The numpy part alone on books built in memory (no node; the same accounts, the "
            "shock price; one scanner kept across rounds, median of 15)"
            + (
                f", side by side with the scanner of `{base}` (rebuilt its arrays every "
                "block) in rotation on the same book, so both see the same load"
                if base
                else ""
            )
            + ":",
            "",
            "| accounts | float twin + flag ms | fastest round ms | flagged "
            + ("| before (`" + base + "`) ms | before / now |" if base else "|"),
            "| ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if base else ""),
            *(
                f"| {x['accounts']:,} | {x['numpy_ms']:.1f} | {x['min_ms']:.1f} "
                f"| {x['flagged']:,} |"
                + (f" {x['old_ms']:.1f} | {x['old_ms'] / x['numpy_ms']:.1f}x |" if base else "")
                for x in synthetic
            ),
        ]
    lines += ["", *growth(runs)]
    return "\n".join(lines)


def growth(runs: list[KeeperRun]) -> list[str]:
    """The targets and how the costs grow with the book, in words."""
    if len(runs) < 2:
        return []
    a, b = runs[0], runs[-1]
    k = b.accounts / a.accounts
    ten = next((r for r in runs if r.accounts == 10_000), None)
    out = []
    if ten is not None:
        shock = ten.strategies["twin"]
        out.append(
            f"Target: the shock block under 1,000 ms at 10,000 accounts with one worker: "
            f"{shock:,.0f} ms with the twins deciding ({'met' if shock < 1_000 else 'missed'}; "
            f"`healths` for every flagged account: {ten.strategies['chain']:,.0f} ms in one "
            f"batch, {ten.strategies['parallel']:,.0f} ms over 4 concurrent batches: anvil "
            "runs the calls one after another)."
        )
    big = next((r for r in runs if r.accounts == 100_000), None)
    if big is not None:
        out.append(
            f"Target: 100,000 accounts indexed and scanned, numpy part under 50 ms per block: "
            f"{big.scan_numpy_ms:.1f} ms quiet, {big.shock_numpy_ms:.1f} ms on the shock block "
            f"({'met' if max(big.scan_numpy_ms, big.shock_numpy_ms) < 50 else 'missed'}); "
            f"backfill {big.backfill_s:.0f} s."
        )
    out += [
        "",
        f"From {a.accounts:,} to {b.accounts:,} accounts ({k:.0f}x): the numpy scan grows "
        f"{b.scan_numpy_ms / a.scan_numpy_ms:.1f}x, the twins' decisions on the shock block "
        f"{b.shock_decide_ms / max(a.shock_decide_ms, 1e-3):.1f}x (flagged "
        f"{a.flagged:,} -> {b.flagged:,}), the chain part (prices and parameters: a fixed "
        f"batch) {b.shock_chain_ms / a.shock_chain_ms:.1f}x; `healths` over the flagged "
        f"accounts grows with them: {b.strategies['chain']:,.0f} ms at {b.flagged:,}.",
        "",
        "Blocks to the last liquidation are bounded by block gas, not by the keeper: it sends "
        f"at most {LiquidatorConfig.max_per_tick} liquidations a block (`max_per_tick`, its "
        "default: about a block's gas; batched previews and simulations, then the sends in "
        "one batch), and each block includes as many as fit in 30M gas (the max gas / block "
        "column is a full block).",
    ]
    return out


def measure(
    project,
    test_accounts,
    w3,
    sizes=(1_000, 10_000),
    liquidate_max: int = LIQUIDATE_MAX,
    node_pid: int | None = None,
) -> list[KeeperRun]:
    out = []
    for n in sizes:
        from ape import chain

        snap = chain.snapshot()
        run = run_one(
            project, test_accounts, w3, n, liquidate=n <= liquidate_max, node_pid=node_pid
        )
        print(run, flush=True)
        out.append(run)
        chain.restore(snap)
    return out


SCAN_BASELINE = "ea6f203"  # the scanner before its float scan kept buffers and ran in chunks


def baseline_scanner(rev: str = SCAN_BASELINE):
    """``offchain_risk.keeper.scanner`` as it was at git revision ``rev``, loaded beside
    this tree's (it reads this tree's ``Book``, which only gained fields since)."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{rev}:offchain_risk/keeper/scanner.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = f"_scanner_{rev}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    exec(compile(source, f"{rev}:offchain_risk/keeper/scanner.py", "exec"), module.__dict__)
    return module


def synthetic_scan(n: int, rounds: int = 15, baseline: str | None = SCAN_BASELINE) -> dict:
    """The numpy part of a scan over ``n`` accounts without a node: a book built in memory
    (the benchmark's accounts: long 1 ETH at 2,000, cash in [620, 1,500]) and the float
    twin's flag at the shock price (1,400), by one scanner kept across blocks as the keeper
    keeps it; median ms of ``rounds``, and the flagged count. With ``baseline`` (a git
    revision) the scanner of that revision runs in rotation on the same book (same load),
    and must flag the same accounts."""
    from offchain_risk.keeper.indexer import Book
    from offchain_risk.keeper.scanner import Market, Scanner
    from offchain_risk.keeper.store import AccountEvent
    from offchain_risk.models.margin import RiskParams, pad_scenarios

    rng = np.random.default_rng(0)
    book = Book(len(devnet.MARKETS))
    for i, c in enumerate(rng.uniform(620, 1_500, n)):
        cash = int(c * 10**6) * 10**12
        book.apply(AccountEvent(1, 2 * i, 1 + i, ETH, cash, 0, WAD, 2_000 * WAD))
    prices = [1_400 * WAD] + [int(m.price_usd * WAD) for m in devnet.MARKETS[1:]]
    params = RiskParams(
        floor_bps=np.array([m.floor_bps for m in devnet.MARKETS]),
        haircut_bps=np.array([m.haircut_bps for m in devnet.MARKETS]),
        shocks_bps=pad_scenarios(devnet.DEFAULT_SHOCKS_BPS),
        im_multiplier_wad=3 * WAD // 2,
    )
    market = Market(np.array(prices, dtype=object), np.ones(len(prices), dtype=bool), params)
    scanners = {"new": Scanner(None, book)}
    if baseline:
        old = baseline_scanner(baseline)
        old_market = old.Market(market.prices_wad, market.price_ok, params)
        scanners["old"] = old.Scanner(None, book)
    times: dict[str, list[float]] = {k: [] for k in scanners}
    flagged: dict[str, list[int]] = {}
    for _ in range(rounds):
        for k, scanner in scanners.items():
            t0 = time.perf_counter()
            accounts, _, _ = scanner.flag(market if k == "new" else old_market)
            times[k].append((time.perf_counter() - t0) * 1e3)
            flagged[k] = accounts
    if baseline:
        assert flagged["old"] == flagged["new"]
    out = {"accounts": n, "numpy_ms": statistics.median(times["new"])}
    out |= {"flagged": len(flagged["new"]), "min_ms": min(times["new"])}
    if baseline:
        out |= {"old_ms": statistics.median(times["old"]), "baseline": baseline}
    return out
