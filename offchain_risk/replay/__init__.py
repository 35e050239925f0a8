"""Replays of market history on a local devnet: the crash demo (`ape run demo`).

``path``: the oracle rounds a window of hourly history becomes; ``seed``: trader books
opened through the real order book; ``txs``: a fast raw-transaction sender for seeding;
``replay``: the accelerated clock, the feeds and the keeper, one tick per oracle round;
``report``: the figures, the markdown report and the chart.
"""
