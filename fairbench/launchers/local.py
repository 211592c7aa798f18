"""``launcher=local``: the cells one after the other in the driver's own process."""

from __future__ import annotations

from typing import Iterator

from ..cell import run_cell
from ..plan import Cell
from ..progress import CellProgress
from . import Finished


def launch(cells: list[Cell], config: dict, progress: CellProgress) -> Iterator[Finished]:
    for cell in cells:
        progress.set_running(1)
        yield Finished(cell, run_cell(cell, config))
    progress.set_running(0)
