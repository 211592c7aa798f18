"""``launcher=local``: the cells one after the other in the driver's own process."""

from __future__ import annotations

from collections.abc import Iterator

from ...core.progress import CellProgress
from ..cell import run_cell
from ..plan import Cell
from . import Finished


def launch(cells: list[Cell], config: dict, progress: CellProgress) -> Iterator[Finished]:
    for cell in cells:
        progress.set_running(1)
        yield Finished(cell, run_cell(cell, config))
    progress.set_running(0)
