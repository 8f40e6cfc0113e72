"""How a backup or a restore reports its progress (the CLI draws a bar from it)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
"""``progress(step, rows_done, rows_total)``; ``step`` names the phase and table
(``"restore: products"``)."""


def summed(progress: Progress | None) -> Progress | None:
    """One progress for phases that may run at the same time (safety backup and restore): the
    rows done and to do of every phase so far, added up."""
    if progress is None:
        return None
    done: dict[str, int] = {}
    totals: dict[str, int] = {}

    def report(step: str, rows_done: int, rows_total: int) -> None:
        phase = step.split(":", 1)[0]
        done[phase], totals[phase] = rows_done, rows_total
        progress(step, sum(done.values()), sum(totals.values()))

    return report
