"""Progress of long work: bars on a terminal, and one line per finished cell everywhere.

Inner loops (iterations, epochs) show tqdm bars only when stderr is a terminal: in CI logs, pipes
and nohup they would be noise. A suite's cells are reported in every launcher, terminal or not,
one line per finished cell with its main metrics, the cells done, running and failed, the time so
far and an ETA, so a CI log never goes silent for the twenty minutes a suite takes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm.auto import tqdm

SHOWN_METRICS = ("acc", "deo_mean")


def progress(iterable, desc: str = "", total: int | None = None, leave: bool = False):
    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True, disable=not sys.stderr.isatty())


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


class CellProgress:
    """Cells done, running and failed, with an ETA from this run's rate of finished cells.

    ``total`` counts the cells this run computes (finished cells reused from the folder are not
    in it); the rate is wall-clock, so it already reflects cells running in parallel.
    """

    def __init__(self, total: int, log: Callable[[str], None], now: Callable[[], float] = time.monotonic):
        self.total, self.log, self.now = total, log, now
        self.done = self.failed = self.running = 0
        self.start = now()

    def set_running(self, count: int) -> None:
        self.running = count

    def eta(self) -> float | None:
        finished = self.done + self.failed
        if not finished:
            return None
        return (self.now() - self.start) / finished * (self.total - finished)

    def status(self) -> str:
        eta, finished = self.eta(), self.done + self.failed
        running = min(self.running, self.total - finished)
        return (
            f"{finished}/{self.total} cells done, {running} running, {self.failed} failed; "
            f"elapsed {clock(self.now() - self.start)}, ETA {clock(eta) if eta is not None else '?'}"
        )

    def finished(self, label: str, records: list[dict] | None, error: str | None = None) -> None:
        """Count one cell (``records`` None or a failed record: it failed) and print its line."""
        failed = error is not None or any(r.get("status") != "ok" for r in records or [])
        if failed:
            self.failed += 1
            reason = error or next(r.get("reason", "") for r in records if r.get("status") != "ok")
            outcome = f"FAILED ({reason})"
        else:
            self.done += 1
            outcome = "; ".join(
                f"{r['evaluator']}: " + " ".join(f"{m} {r['metrics'][m]['mean']:.2f}" for m in SHOWN_METRICS)
                for r in records
            )
        self.log(f"fairbench: {label}: {outcome} | {self.status()}")
