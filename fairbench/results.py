"""The result records of a run: one JSON line per (dataset, method, ipc, seed, evaluator) cell.

Records are appended and flushed one at a time, so an interrupted or failing run keeps every cell
it finished, and a rerun into the same folder skips them.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import FairbenchError

RESULTS_FILE = "results.jsonl"


def append_record(out_dir: Path, record: dict) -> None:
    with open(Path(out_dir) / RESULTS_FILE, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()


def read_records(out_dir: Path, missing_ok: bool = False) -> list[dict]:
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        if missing_ok:
            return []
        raise FairbenchError(f"no {RESULTS_FILE} in {out_dir}; pass the out folder of a fairbench run")
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise FairbenchError(f"{path}:{number}: not a JSON record (truncated write?)") from None
    return records
