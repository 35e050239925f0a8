"""What a replay shows: liquidations, the insurance fund, bad debt, keeper latency, margin.

:func:`summarize` reads the chain (the ``Liquidated`` and ``BadDebt`` events, the final
health of every book, the fund and the deficit) into a :class:`ReplayReport`;
:meth:`ReplayReport.summary` is the printed table, :func:`write_report` writes
``report.md`` and ``chart.png``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offchain_risk.keeper.scanner import read_market
from offchain_risk.replay.frontier import Frontier, equal_safety, plot_frontier, replay_frontier
from offchain_risk.replay.funding import FundingFlow, funding_flows, funding_lines
from offchain_risk.replay.replay import Replay, Shock, VenueRun, healths
from offchain_risk.report.tables import markdown_table
from offchain_risk.units import WAD


@dataclass(frozen=True)
class VenueSummary:
    label: str
    accounts: int
    liquidations: int  # Liquidated events on the seeded books
    accounts_liquidated: int
    full_closes: int  # liquidations that took the whole account
    mean_fraction: float
    mean_discount: float
    penalties_usd: float  # paid by the liquidated books
    fees_usd: float  # of which to the insurance fund
    insurance_start_usd: float
    insurance_end_usd: float
    bad_debt_usd: float  # negative cash written off (BadDebt.hole)
    covered_usd: float  # of which the fund covered
    deficit_usd: float  # open at the end
    below_mm_end: int  # books still open and below MM at the end
    closed: int  # books with nothing left (MM = 0) at the end
    im_open_usd: float  # IM of every book at the opening (cross margin)
    mm_open_usd: float
    isolated_im_usd: float  # IM with every leg in its own sub-account
    equity_open_usd: float
    shocks: tuple[Shock, ...]
    outcomes: dict[str, int]
    tick_errors: tuple[str, ...]
    liquidations_per_step: np.ndarray  # (n_steps,)
    bad_debt_per_step: np.ndarray  # (n_steps,) USD
    risk_updates: tuple[tuple[int, str, bool], ...] = ()  # (round, reason, landed)
    pokes: int = 0
    vol_runs: tuple[VolRun, ...] = ()  # the keeper's vol surface runs, in order
    funding: tuple[FundingFlow, ...] = ()  # per perp market whose funding moved
    options: OptionSummary | None = None  # the option books, when the venue has them


@dataclass(frozen=True)
class OptionSummary:
    """The option books of a venue (Ballast's: the flat venue lists no options), apart
    from the linear books the venues share."""

    books: int
    underlyings: dict[str, int]  # books per underlying
    notional_usd: float  # underlying units x opening price, summed
    im_open_usd: float  # IM of the option books at the opening
    liquidations: int
    accounts_liquidated: int
    bad_debt_usd: float  # BadDebt on the option books
    below_mm_end: int
    closed: int  # no option leg nor perp left (MM = 0) at the end
    # per archetype: (books, books liquidated, bad debt USD, opening IM USD)
    by_archetype: dict[str, tuple[int, int, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class VolRun:
    """One underlying's run of the keeper's vol updater in the replay."""

    symbol: str
    published: int  # curves sent
    refused: str | None  # "check: reason" when refused
    asof: np.datetime64 | None = None  # history time of the fitted surface
    source: str | None = None  # dvol or realised
    atm: tuple[float, ...] = ()  # ATM vol of each published expiry, ascending


def vol_runs(v: VenueRun) -> tuple[VolRun, ...]:
    """The vol updater's runs of ``v``'s keeper (none without one)."""
    updater = getattr(v.keeper, "vol_updater", None)
    if updater is None:
        return ()
    names = {a: s for s, a in v.deployment.symbols.items()}
    out = []
    for _, res in updater.runs:
        surface = res.surface
        out.append(
            VolRun(
                symbol=names.get(res.underlying, str(res.underlying)),
                published=len(res.published),
                refused=None if res.ok else f"{res.check}: {res.refused}",
                asof=surface.asof if surface is not None else None,
                source=surface.source if surface is not None else None,
                atm=tuple(c.atm_vol for c in surface.curves) if surface is not None else (),
            )
        )
    return tuple(out)


def vol_lines(runs: tuple[VolRun, ...]) -> list[str]:
    """The report's section on the vol surfaces the keeper published during the window."""
    if not runs:
        return []
    lines = [
        "## Vol surfaces",
        "",
        "Ballast's keeper fits each listed underlying's surface hourly on the chain's clock "
        "from the data that clock has reached (DVOL level where it exists, else realised vol "
        "times the stated ratio; see RISK_MODEL.md), checks it and publishes its expiries "
        "(1, 7, 30 and 90 days on the 08:00 grid) through the VolFeed, signed 2 of 2 and sent "
        "from the keeper's key. ATM vols: the 1-day and the 30-day expiry, first, lowest, "
        "highest and last over the published surfaces.",
        "",
    ]
    rows = []
    for symbol in dict.fromkeys(r.symbol for r in runs):
        mine = [r for r in runs if r.symbol == symbol]
        ok = [r for r in mine if r.refused is None and r.atm]

        def path(i: int, ok=ok) -> str:
            xs = [r.atm[min(i, len(r.atm) - 1)] for r in ok]
            if not xs:
                return "-"
            return f"{xs[0]:.0%} / {min(xs):.0%} / {max(xs):.0%} / {xs[-1]:.0%}"

        sources = ", ".join(sorted({r.source for r in ok if r.source})) or "-"
        rows.append(
            [
                symbol,
                str(len(ok)),
                str(sum(r.published for r in mine)),
                str(len(mine) - len(ok)),
                path(0),
                path(2),
                sources,
            ]
        )
    lines.append(
        markdown_table(
            [
                "underlying",
                "surfaces published",
                "curves",
                "refused",
                "ATM 1d (first / low / high / last)",
                "ATM 30d",
                "level from",
            ],
            rows,
        )
    )
    reasons: dict[str, int] = {}
    for r in runs:
        if r.refused is not None:
            key = f"{r.symbol}: {r.refused}"
            reasons[key] = reasons.get(key, 0) + 1
    lines.append("")
    if reasons:
        lines.append("Refused:")
        lines.append("")
        lines += [f"- {k} ({n}x)" for k, n in sorted(reasons.items())]
    else:
        lines.append("No surface was refused.")
    lines.append("")
    return lines


@dataclass(frozen=True)
class ReplayReport:
    replay: Replay
    venues: tuple[VenueSummary, ...]
    frontier: Frontier | None = None  # peer rules swept against Ballast's point

    @property
    def ballast(self) -> VenueSummary:
        return self.venues[0]

    def headline(self) -> list[list[str]]:
        """Rows of the headline table (one column per venue)."""

        def usd(x: float) -> str:
            return f"${x:,.0f}"

        rows = [
            ("books", lambda v: f"{v.accounts}"),
            ("liquidations (accounts)", lambda v: f"{v.liquidations} ({v.accounts_liquidated})"),
            ("full closes", lambda v: f"{v.full_closes}"),
            ("mean fraction per liquidation", lambda v: f"{v.mean_fraction:.1%}"),
            ("mean discount", lambda v: f"{v.mean_discount:.2%}"),
            ("penalties paid by the books", lambda v: usd(v.penalties_usd)),
            (
                "insurance fund start -> end",
                lambda v: f"{usd(v.insurance_start_usd)} -> " f"{usd(v.insurance_end_usd)}",
            ),
            (
                "bad debt (covered by the fund)",
                lambda v: f"{usd(v.bad_debt_usd)} " f"({usd(v.covered_usd)})",
            ),
            ("deficit left", lambda v: usd(v.deficit_usd)),
            ("books below MM at the end", lambda v: f"{v.below_mm_end}"),
            ("books closed out", lambda v: f"{v.closed}"),
            ("margin used at the opening (IM)", lambda v: usd(v.im_open_usd)),
            ("IM if every leg were isolated", lambda v: usd(v.isolated_im_usd)),
            ("shocks: rounds with books below MM", lambda v: f"{len(v.shocks)}"),
            (
                "signed risk updates landed (on a vol jump)",
                lambda v: f"{sum(1 for u in v.risk_updates if u[2])} "
                f"({sum(1 for u in v.risk_updates if u[2] and u[1] == 'vol_jump')})",
            ),
            (
                "keeper ticks to restore (max)",
                lambda v: f"{max((s.ticks for s in v.shocks), default=0)}",
            ),
        ]
        return [[name, *(f(v) for v in self.venues)] for name, f in rows]

    def summary(self) -> str:
        r = self.replay
        head = ["", *(v.label for v in self.venues)]
        widths = [
            max(len(str(row[i])) for row in [head, *self.headline()]) for i in range(len(head))
        ]
        lines = [
            f"Replay {r.path.opening_time} .. {r.path.times[-1]} UTC, {', '.join(r.path.assets)}: "
            f"{r.path.n_steps} oracle rounds ({r.path.mode}), {r.wall_seconds:.0f} s "
            f"(seeding {r.seed_seconds:.0f} s)",
            "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
        ]
        for row in self.headline():
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        if r.listing is not None:
            lines.append(r.listing.summary())
            lines.append(
                f"risk engine recalibrations by Ballast's keeper: {r.venues[0].recalibrations}"
            )
        o = self.ballast.options
        if o is not None:
            lines.append(
                f"option books on {self.ballast.label}: {o.books}, opening IM "
                f"${o.im_open_usd:,.0f} on ${o.notional_usd:,.0f} notional, {o.liquidations} "
                f"liquidations ({o.accounts_liquidated} books), bad debt ${o.bad_debt_usd:,.0f}, "
                f"{o.below_mm_end} below MM at the end, {o.closed} closed"
            )
        if self.frontier is not None:
            lines.extend(frontier_lines(self.frontier))
        for v in self.venues:
            outcomes = ", ".join(f"{k} {n}" for k, n in sorted(v.outcomes.items())) or "none"
            lines.append(f"{v.label} keeper actions: {outcomes}")
            if v.tick_errors:
                lines.append(
                    f"{v.label}: {len(v.tick_errors)} keeper ticks lost: {v.tick_errors[0]}"
                )
        return "\n".join(lines)


def _events_by_step(blocks: list[int], venue_blocks: list[int]) -> np.ndarray:
    """(n_events,) index of the round each event's block belongs to."""
    return np.searchsorted(np.asarray(venue_blocks), np.asarray(blocks, dtype=np.int64), "left")


def summarize_options(v: VenueRun, liquidated: list, bad: list) -> OptionSummary | None:
    """The option books' figures from the replay's ``Liquidated`` and ``BadDebt`` logs."""
    o = v.options
    if o is None:
        return None
    ids = set(o.accounts)
    liq = [e for e in liquidated if e.account in ids]
    states = healths(v.deployment.engine, o.accounts)

    underlyings = dict(Counter(spec.underlying for spec in o.specs))
    liquidated_ids = {e.account for e in liq}
    holes: dict[int, int] = {}
    for e in bad:
        holes[e.account] = holes.get(e.account, 0) + int(e.hole)
    by_archetype: dict[str, tuple[int, int, float, float]] = {}
    ims = v.opening["option_ims"]
    for spec, account, im0 in zip(o.specs, o.accounts, ims, strict=True):
        n, hit, hole, im = by_archetype.get(spec.archetype, (0, 0, 0.0, 0.0))
        by_archetype[spec.archetype] = (
            n + 1,
            hit + (account in liquidated_ids),
            hole + holes.get(account, 0) / WAD,
            im + im0 / WAD,
        )
    return OptionSummary(
        books=len(o.accounts),
        underlyings=underlyings,
        notional_usd=sum(spec.units * o.prices[spec.underlying] for spec in o.specs),
        im_open_usd=sum(ims) / WAD,
        liquidations=len(liq),
        accounts_liquidated=len(liquidated_ids),
        bad_debt_usd=sum(holes.get(a, 0) for a in ids) / WAD,
        below_mm_end=sum(1 for st in states if int(st.mm) > 0 and int(st.equity) < int(st.mm)),
        closed=sum(1 for st in states if int(st.mm) == 0),
        by_archetype=by_archetype,
    )


def summarize_venue(v: VenueRun, n_steps: int) -> VenueSummary:
    d = v.deployment
    start, stop = v.opening["block"], v.step_block[-1] if v.step_block else v.opening["block"]
    seeded = set(v.seeded.accounts)
    liquidated = list(d.liquidations.Liquidated.range(start, stop + 1))
    liq = [e for e in liquidated if e.account in seeded]
    every_hole = list(d.engine.BadDebt.range(start, stop + 1))
    # the books the venues share: an option book's hole is in its own summary
    options = set() if v.options is None else set(v.options.accounts)
    bad = [e for e in every_hole if e.account not in options]
    states = healths(d.engine, v.seeded.accounts)
    below = sum(1 for s in states if int(s.mm) > 0 and int(s.equity) < int(s.mm))
    closed = sum(1 for s in states if int(s.mm) == 0)
    per_step = np.zeros(n_steps, dtype=np.int64)
    if liq:
        np.add.at(
            per_step,
            np.minimum(_events_by_step([e.block_number for e in liq], v.step_block), n_steps - 1),
            1,
        )
    bad_step = np.zeros(n_steps)
    if bad:
        idx = np.minimum(_events_by_step([e.block_number for e in bad], v.step_block), n_steps - 1)
        np.add.at(bad_step, idx, [int(e.hole) / WAD for e in bad])
    return VenueSummary(
        label=v.label,
        accounts=len(v.seeded.accounts),
        liquidations=len(liq),
        accounts_liquidated=len({e.account for e in liq}),
        full_closes=sum(1 for e in liq if int(e.fraction) == WAD),
        mean_fraction=float(np.mean([int(e.fraction) / WAD for e in liq])) if liq else 0.0,
        mean_discount=float(np.mean([int(e.discount) / WAD for e in liq])) if liq else 0.0,
        penalties_usd=sum(int(e.penalty) for e in liq) / WAD,
        fees_usd=sum(int(e.fee) for e in liq) / WAD,
        insurance_start_usd=v.opening["insurance"] / WAD,
        insurance_end_usd=int(d.engine.cash(0)) / WAD,
        bad_debt_usd=sum(int(e.hole) for e in bad) / WAD,
        covered_usd=sum(int(e.covered) for e in bad) / WAD,
        deficit_usd=int(d.engine.deficit()) / WAD,
        below_mm_end=below,
        closed=closed,
        im_open_usd=v.opening["im"] / WAD,
        mm_open_usd=v.opening["mm"] / WAD,
        isolated_im_usd=v.opening["isolated_im"] / WAD,
        equity_open_usd=v.opening["equity"] / WAD,
        shocks=tuple(v.shocks),
        outcomes=dict(v.outcomes),
        tick_errors=tuple(v.tick_errors),
        liquidations_per_step=per_step,
        bad_debt_per_step=bad_step,
        risk_updates=tuple(v.risk_updates),
        pokes=v.pokes,
        vol_runs=vol_runs(v),
        funding=venue_funding(v),
        options=summarize_options(v, liquidated, every_hole),
    )


def option_lines(o: OptionSummary) -> list[str]:
    """The "Option books" section of the report."""

    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {n}" for k, n in d.items())

    archetypes = counts({kind: row[0] for kind, row in o.by_archetype.items()})

    rows = [
        ["books", f"{o.books} ({archetypes}; {counts(o.underlyings)})"],
        ["notional (underlying at the opening)", f"${o.notional_usd:,.0f}"],
        ["margin used at the opening (IM)", f"${o.im_open_usd:,.0f}"],
        ["liquidations (accounts)", f"{o.liquidations} ({o.accounts_liquidated})"],
        ["bad debt", f"${o.bad_debt_usd:,.0f}"],
        ["books below MM at the end", str(o.below_mm_end)],
        ["books closed out", str(o.closed)],
    ]
    per_kind = [
        [kind, str(n), f"${im:,.0f}", str(hit), f"${hole:,.0f}"]
        for kind, (n, hit, hole, im) in o.by_archetype.items()
    ]
    return [
        "## Option books (Ballast)",
        "",
        "The risk engine's option archetypes (`backtest/options.py`) on Ballast's option book, "
        "each on the listed expiry nearest 30 days among the curves the keeper published at "
        "the opening, strikes at 90%, 100% and 110% of the opening price, the options sold to "
        "a desk at the mark of the published curve, the delta-hedged call hedged in the perp, "
        "cash trimmed to IM times the book's buffer (`offchain_risk/replay/options.py`). The "
        "keeper asks the chain about every option holder each block. The flat venue lists no "
        "options: these books are outside the headline, whose bad debt counts the shared "
        "books only (the fund and the deficit are the venue's).",
        "",
        markdown_table(["", "figure"], rows),
        "",
        markdown_table(
            ["archetype", "books", "opening IM", "books liquidated", "bad debt"], per_kind
        ),
        "",
    ]


def venue_funding(v: VenueRun) -> tuple[FundingFlow, ...]:
    """The venue's funding from its keeper's index, brought to the chain's head."""
    head = v.keeper.indexer.sync().head
    market = read_market(v.keeper.c, head)
    return funding_flows(v.keeper.store, v.keeper.book, market, v.deployment.symbols)


def summarize(replay: Replay) -> ReplayReport:
    n = replay.path.n_steps
    venues = tuple(summarize_venue(v, n) for v in replay.venues)
    frontier = None
    if replay.listing is not None:
        flat = venues[1].bad_debt_usd if len(venues) > 1 else None
        frontier = replay_frontier(replay, venues[0].bad_debt_usd, flat)
    return ReplayReport(replay, venues, frontier)


def plot_replay(report: ReplayReport, path: Path) -> Path:
    """Prices, the spread of E / MM across books, liquidations and bad debt over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = report.replay
    t = r.path.times.astype("datetime64[s]").astype(object)
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    ax = axes[0]
    for j, asset in enumerate(r.path.assets):
        ax.plot(t, 100 * r.path.prices[:, j] / r.path.opening[j], lw=1.2, label=asset)
    ax.set_ylabel("price (opening = 100)")
    ax.set_title(
        f"Replay of {r.path.opening_time.astype('datetime64[D]')} .. "
        f"{r.path.times[-1].astype('datetime64[D]')}: {report.ballast.accounts} books per "
        "venue, keeper running"
    )
    ax.legend(loc="lower left", fontsize=8, ncol=len(r.path.assets))
    ax = axes[1]
    colors = ("tab:blue", "tab:red")
    for v, color in zip(r.venues, colors, strict=False):
        ratio = np.array(v.ratio)  # (n_steps, n_accounts)
        # books with nothing left (MM = 0) drop out; log scale, clipped to [0.25, 50]
        finite = np.where(np.isfinite(ratio), np.clip(ratio, 0.25, 50), np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p10, p50, p90 = (np.nanpercentile(finite, q, axis=1) for q in (10, 50, 90))
        ax.fill_between(t, p10, p90, color=color, alpha=0.18, lw=0)
        ax.plot(t, p50, color=color, lw=1.2, label=f"{v.label}: median E/MM (10-90% band)")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.text(t[0], 1.02, "liquidatable below 1", fontsize=7, va="bottom")
    ax.set_yscale("log")
    ax.set_ylabel("equity / MM of open books (log)")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    width = (r.path.times[1] - r.path.times[0]).astype("timedelta64[s]").astype(float) / 86_400
    for i, (v, color) in enumerate(zip(report.venues, colors, strict=False)):
        offset = np.timedelta64(int((i - 0.5) * width * 86_400 / 2), "s")
        ts = (r.path.times + offset).astype("datetime64[s]").astype(object)
        ax.bar(
            ts,
            v.liquidations_per_step,
            width=width / 2,
            color=color,
            label=f"{v.label}: liquidations ({v.liquidations})",
        )
    ax.set_ylabel("liquidations per round")
    ax2 = ax.twinx()
    for v, color in zip(report.venues, colors, strict=False):
        ax2.plot(
            t,
            np.cumsum(v.bad_debt_per_step),
            color=color,
            lw=1.5,
            ls=":",
            label=f"{v.label}: bad debt ${v.bad_debt_usd:,.0f}",
        )
    ax2.set_ylabel("cumulative bad debt (USD)")
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="upper right", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def frontier_lines(frontier: Frontier) -> list[str]:
    """Plain-text lines: Ballast's point, each rule at equal bad debt, what dominates it."""
    im, bad = frontier.ballast_chain
    lines = [f"frontier: Ballast opening IM ${im:,.0f}, bad debt ${bad:,.0f}"]
    if frontier.flat_chain is not None and frontier.flat_model is not None:
        lines.append(
            f"  model vs chain, flat 6.5%: bad debt ${frontier.flat_model.bad_debt_usd:,.0f} "
            f"(model) vs ${frontier.flat_chain[1]:,.0f} (chain)"
        )
    for rule, p in equal_safety(frontier.points, bad).items():
        lines.append(
            f"  {rule}: cheapest level with bad debt <= Ballast's: x{p.level:g}, opening IM "
            f"${p.opening_im_usd:,.0f} ({p.opening_im_usd / im - 1:+.0%} vs Ballast)"
        )
    beaten = frontier.dominated_by
    lines.append(
        "  no peer point has both less margin and less bad debt: Ballast is on the frontier"
        if not beaten
        else f"  {len(beaten)} peer points have both less margin and less bad debt"
    )
    if frontier.own_im_points:
        lines.append(
            f"  with every book at its rule's own IM: {len(frontier.own_im_dominated_by)} "
            "peer points have both less margin and less bad debt"
        )
    return lines


def _frontier_section(report: ReplayReport, out_dir: Path) -> list[str]:
    frontier = report.frontier
    if frontier is None:
        return []
    r = report.replay
    png = plot_frontier(
        frontier,
        out_dir / "frontier.png",
        f"{r.path.opening_time.astype('datetime64[D]')} .. "
        f"{r.path.times[-1].astype('datetime64[D]')}: margin against bad debt",
    )
    im, bad = frontier.ballast_chain
    model = frontier.ballast_model
    lines = [
        "## Efficient frontier: margin against bad debt",
        "",
        "Each peer rule swept over its own level (flat: the MM rate of gross; the others: a "
        "multiplier on their published parameters, `offchain_risk/models/peers.py`) through "
        "the same books, rounds and liquidation policy in a numpy model of the replay "
        "(`offchain_risk/replay/frontier.py`). Every book holds the same capital under every "
        "rule: the equity it holds on Ballast's chain (its buffer over Ballast's opening IM). "
        "A rule decides what it asks (the margin axis: its IM at the opening) and when it "
        "liquidates; a rule whose MM is above a book's capital cuts it at the first round, "
        "as if it had refused it. Ballast's point is the one measured on the "
        f"chain above: opening IM ${im:,.0f}, bad debt ${bad:,.0f}. Its opening listing "
        f"through the same model, held fixed (no keeper updates): ${model.opening_im_usd:,.0f}"
        f", bad debt ${model.bad_debt_usd:,.0f}.",
        "",
    ]
    if frontier.flat_chain is not None and frontier.flat_model is not None:
        lines += [
            "How far the model is from the chain: the flat 6.5% venue took "
            f"${frontier.flat_chain[1]:,.0f} of bad debt on the chain and "
            f"${frontier.flat_model.bad_debt_usd:,.0f} in the model with its books at its own "
            "IM, as the chain funds them (the model plans every "
            "liquidation as the contract does, in floats, each book below MM once per pass; "
            "the chain's keeper orders and batches them). The peer curves are the model's; "
            "Ballast's model point (its opening listing, without the keeper's "
            "recalibration) is the like-for-like comparison.",
            "",
        ]
    safe = equal_safety(frontier.points, bad)
    # like for like: Ballast's listing held fixed through the same model
    safe_model = equal_safety(frontier.points, model.bad_debt_usd)
    rows = []
    for rule in dict.fromkeys(p.rule for p in frontier.points):
        published = [q for q in frontier.points if q.rule == rule]
        row = [rule]
        for p, ballast_im in ((safe.get(rule), im), (safe_model.get(rule), model.opening_im_usd)):
            row += (
                [
                    f"x{p.level:g}",
                    f"${p.opening_im_usd:,.0f} ({p.opening_im_usd / ballast_im - 1:+.0%})",
                ]
                if p
                else ["none in the sweep", ""]
            )
        row.append(
            f"${max(q.bad_debt_usd for q in published):,.0f} .. "
            f"${min(q.bad_debt_usd for q in published):,.0f}"
        )
        rows.append(row)
    lines.append(
        markdown_table(
            [
                "rule",
                "cheapest level with bad debt <= Ballast's on the chain",
                "its opening IM (vs Ballast)",
                "cheapest level with bad debt <= Ballast's listing (model)",
                "its opening IM (vs the listing)",
                "bad debt over the sweep",
            ],
            rows,
        )
    )
    beaten = frontier.dominated_by
    lines += [
        "",
        "No peer point has both less opening margin and less bad debt than Ballast's: "
        "Ballast is on the frontier."
        if not beaten
        else f"{len(beaten)} peer points have both less opening margin and less bad debt "
        "than Ballast's: " + ", ".join(f"{p.rule} x{p.level:g}" for p in beaten[:6]) + ".",
        "",
    ]
    if beaten:
        lines += [*_traders_table(model, beaten), ""]
    lines += _own_im_lines(frontier)
    lines += [f"![frontier]({png.name})", ""]
    return lines


def _own_im_lines(frontier: Frontier) -> list[str]:
    """The sweep with every book at its rule's own IM: what it shows and why it is not the
    frontier."""
    if not frontier.own_im_points:
        return []
    beaten = frontier.own_im_dominated_by
    lines = [
        "### With every book at its rule's own IM",
        "",
        "The same sweep with every book funded at its buffer over the rule's own IM (as the "
        "flat venue's books are on the chain) measures the traders' leverage as much as the "
        "rule: the cheaper the rule, the thinner every book, and in a one-way slide thin "
        "books are cut down in its first small steps, before the gap. Bad debt is then not "
        "monotone in a rule's level (right panel). "
        + (
            "No peer point has both less opening margin and less bad debt than Ballast's "
            "there either."
            if not beaten
            else f"There, {len(beaten)} peer points have both less opening margin and less "
            "bad debt than Ballast's: "
            + ", ".join(f"{p.rule} x{p.level:g}" for p in beaten[:6])
            + (", ..." if len(beaten) > 6 else "")
            + "."
        ),
        "",
    ]
    if beaten:
        lines += [*_traders_table(frontier.ballast_model, beaten), ""]
    return lines


def _traders_table(model, beaten) -> list[str]:
    """What the peer points with less margin and less bad debt cost the traders, in the same
    model as Ballast's opening listing: books liquidated, closed whole, penalties paid."""

    def row(name: str, r) -> list[str]:  # a SimResult or a FrontierPoint
        return [
            name,
            f"${r.opening_im_usd:,.0f}",
            f"${r.bad_debt_usd:,.0f}",
            f"{r.liquidated:,}",
            f"{r.closed:,}",
            f"${r.penalties_usd:,.0f}",
        ]

    rows = [row("Ballast's opening listing (model)", model)]
    rows += [
        row(f"{p.rule} x{p.level:g}", p) for p in sorted(beaten, key=lambda p: p.opening_im_usd)
    ]
    return [
        "What those points cost the traders, in the same model as Ballast's opening listing: "
        "books liquidated at least once, books closed whole, and the penalties they paid.",
        "",
        markdown_table(
            [
                "rule",
                "opening IM",
                "bad debt",
                "books liquidated",
                "books closed out",
                "penalties paid",
            ],
            rows,
        ),
    ]


def _engine_lines(r: Replay) -> list[str]:
    """The "Risk engine" section: how Ballast's markets were listed and kept."""
    listing = r.listing
    if listing is None:
        return []
    lines = ["## Risk engine", ""]
    if listing.calibrated:
        meta = listing.params["metadata"]
        add_on = meta["liquidity_add_on"]
        lines.append(
            f"Ballast's markets are listed by the risk engine (`offchain_risk.calibrate`) on the "
            f"data closed by {listing.asof}Z, the window's start: {meta['data_range'][0]} .. "
            f"{meta['data_range'][1]} hourly for {', '.join(listing.calibrated)}, filtered "
            f"historical simulation blended with the stressed period "
            f"{(meta['stressed_period'] or {}).get('start', 'none')} .. "
            f"{(meta['stressed_period'] or {}).get('end', '')}, ES {meta['alpha']}, horizon "
            f"{meta['horizon_hours']} h ({r.config.listing.horizon.summary()}), K = "
            f"{meta['k']} (scale {meta['scenario_scale']:.2f}), IM multiplier "
            f"{listing.im_multiplier_wad / 1e18:.4f}; liquidity add-on for a "
            f"${add_on['close_out_position_usd']:,.0f} close-out: "
            + ", ".join(f"{a} {b} bps" for a, b in add_on["bps"].items())
            + "."
        )
        lines.append("")
        rows = [
            [
                m.symbol,
                str(int(listing.shocks_bps[i].min())),
                str(int(listing.shocks_bps[i].max())),
                str(m.floor_bps),
                str(m.haircut_bps),
                "calibrated" if m.symbol in listing.calibrated else "hand-written (fallback)",
            ]
            for i, m in enumerate(listing.markets)
        ]
        lines.append(
            markdown_table(
                ["market", "worst fall (bps)", "worst rise (bps)", "floor", "haircut", "source"],
                rows,
            )
        )
        lines.append("")
    if listing.fallback:
        lines.append(
            f"Too little hourly history before the window to calibrate: "
            f"{', '.join(listing.fallback)}; listed with hand-written shock rows "
            "(`devnet.REPLAY_SPECS`)."
        )
        lines.append("")
    lines.extend(f"{n}." for n in listing.notes)
    lines.append(
        f"During the replay Ballast's keeper recalibrated {r.venues[0].recalibrations} times on "
        "the data closed by the chain's clock, scaled the shocks by realised volatility and "
        "signed the steps through the governor."
    )
    lines.append("")
    return lines


def write_report(report: ReplayReport, out_dir: Path) -> tuple[Path, Path]:
    """``report.md`` and ``chart.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = plot_replay(report, out_dir / "chart.png")
    r = report.replay
    lines = [
        "# Crash replay",
        "",
        f"Hourly prices of {', '.join(r.path.assets)} from {r.path.opening_time} to "
        f"{r.path.times[-1]} UTC (`../shared/data/prices/1h`, Binance perpetuals), "
        f"{r.path.n_steps} oracle rounds ({r.path.mode} mode) pushed into mock Chainlink feeds "
        "on a local anvil chain whose clock follows the historical one. The keeper "
        "(`offchain_risk.keeper.Keeper`) ticks after every round until no book is below MM "
        f"(at most {r.config.max_ticks} ticks). Seed {r.config.seed}; run time "
        f"{r.wall_seconds:.0f} s.",
        "",
        "The baseline is the same contracts with a flat 6.5% maintenance margin on gross "
        "exposure and no scenario shocks, seeded with the same positions at the same buffer "
        "over its own IM, with its own keeper.",
        "",
        "## Headline",
        "",
        markdown_table(["", *(v.label for v in report.venues)], report.headline()),
        "",
        *_engine_lines(r),
        "## Books",
        "",
    ]
    kinds: dict[str, int] = {}
    for s in r.venues[0].seeded.specs:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    lines.append(markdown_table(["kind", "books"], [[k, str(n)] for k, n in kinds.items()]))
    lines += ["", "## Keeper latency per shock", ""]
    lines.append(
        "A shock is an oracle round after which the keeper's scan found books below MM. "
        "Ticks count the keeper's blocks from the round to a clean scan (the last tick is "
        "the clean scan); wall time runs from the price update."
    )
    lines.append("")
    for v in report.venues:
        lines.append(f"### {v.label}")
        lines.append("")
        top = sorted(v.shocks, key=lambda s: s.hit, reverse=True)[:12]
        rows = [
            [
                str(s.at),
                str(s.hit),
                str(s.liquidations),
                str(s.ticks),
                "yes" if s.cleared else "no",
                f"{s.wall_ms:,.0f}",
            ]
            for s in sorted(top, key=lambda s: s.step)
        ]
        if rows:
            lines.append(
                markdown_table(
                    [
                        "round (UTC)",
                        "books below MM",
                        "liquidations",
                        "ticks",
                        "cleared",
                        "wall ms",
                    ],
                    rows,
                )
            )
        else:
            lines.append("No round left a book below MM.")
        outcomes = ", ".join(f"{k} {n}" for k, n in sorted(v.outcomes.items())) or "none"
        lines += ["", f"Keeper actions: {outcomes}.", ""]
    if report.ballast.options is not None:
        lines += option_lines(report.ballast.options)
    lines += vol_lines(report.ballast.vol_runs)
    lines += funding_lines([(v.label, v.funding) for v in report.venues])
    lines += _frontier_section(report, out_dir)
    lines += ["## Chart", "", "![replay](chart.png)", ""]
    md = out_dir / "report.md"
    md.write_text("\n".join(lines))
    return md, chart
