"""Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None
) -> str:
    """A GitHub markdown table; ``align`` is one of l/r per column (default: first l, rest r)."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError("every row needs one cell per header")
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def pct(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}%"


def pval(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"
