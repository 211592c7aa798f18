"""The result records of a run: one JSON line per (dataset, method, ipc, seed, evaluator) cell.

One process (the run's driver, holding the out folder's lock) appends records, each as one whole
line flushed and fsynced at once, so an interrupted or failing run keeps every cell it finished and
a rerun into the same folder skips them. A line is written in one piece ending with its newline,
so the only damage an interrupted append can leave is a last line without its newline: readers
drop it with a warning (it is the cell that was not finished) and the driver cuts it off before
appending. Damage anywhere else is not the trace of an interrupted append, and is an error that
names the line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..core.errors import FairbenchError

RESULTS_FILE = "results.jsonl"
RECORD_KEYS = ("cell_id", "status", "dataset", "method", "ipc", "seed", "evaluator")


log = logging.getLogger(__name__)


def append_record(out_dir: Path, record: dict) -> None:
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(Path(out_dir) / RESULTS_FILE, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _check_record(value, path: Path, number: int) -> dict:
    missing = [k for k in RECORD_KEYS if k not in value] if isinstance(value, dict) else list(RECORD_KEYS)
    if missing:
        raise FairbenchError(
            f"{path}:{number}: valid JSON but not a fairbench record (no {', '.join(missing)}); "
            f"delete that line, or move the file away, and rerun"
        )
    return value


def _parse(path: Path, text: str) -> tuple[list[dict], int | None]:
    """The records of ``text`` and, if its last line is torn, the byte offset where that line starts."""
    records, offset = [], 0
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for number, line in enumerate(lines, 1):
        start, offset = offset, offset + len(line.encode())
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                return records, start
            raise FairbenchError(
                f"{path}:{number}: not a JSON record; that line is damaged: delete it (the cell "
                f"is recomputed on the next run into this folder) and rerun"
            ) from None
        records.append(_check_record(value, path, number))
    return records, None


def read_records(out_dir: Path, missing_ok: bool = False) -> list[dict]:
    """Every record of ``out_dir``; a torn last line is left out with a warning."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        if missing_ok:
            return []
        raise FairbenchError(f"no {RESULTS_FILE} in {out_dir}; pass the out folder of a fairbench run")
    return load_records(path)


def load_records(path: Path) -> list[dict]:
    """The records of one JSON-lines file (results.jsonl, or a cell file of a Slurm job)."""
    try:
        text = path.read_bytes().decode()
    except UnicodeDecodeError as error:
        raise FairbenchError(f"{path}: not text (byte {error.start} is not UTF-8); it is not a results file") from None
    records, torn = _parse(path, text)
    if torn is not None:
        log.warning(
            "fairbench: warning: %s: the last line is cut off (an interrupted write); it is left out "
            "and its cell counts as not finished",
            path,
        )
    return records


def drop_torn_last_line(out_dir: Path) -> bool:
    """Cut a torn last line off results.jsonl, so the next append starts on a line of its own.

    Called only by the driver holding the folder's lock; returns whether a line was cut.
    """
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        return False
    try:
        _, torn = _parse(path, path.read_bytes().decode())
    except UnicodeDecodeError:
        return False  # read_records names the problem
    if torn is None:
        return False
    os.truncate(path, torn)
    return True
