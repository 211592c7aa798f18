"""Progress bars for long work, silent when stderr is not a terminal (CI logs, pipes, nohup)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress(iterable, desc: str = "", total: int | None = None, leave: bool = False):
    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True,
                disable=not sys.stderr.isatty())
