"""The out folder of a run is a small database: one run writes it at a time, and it says what it holds.

Opening it, before any compute:

- ``out=`` must be a folder fairbench can write: a file, a read-only or a full disk is one error
  line (exit 2) now, not a traceback after the first cell;
- the folder is locked (``filelock``, released by the OS even when the holder is killed -9); a
  second run names the process holding it (pid, host, command, start time from ``.lock.json``)
  and exits 2, so two runs never compute and record the same cells twice;
- records that a Slurm job wrote to ``cells/`` but no driver merged yet are merged, and a torn
  last line of ``results.jsonl`` is cut off;
- the protocols the folder already holds are named, and the finished cells this run would reuse
  are checked against the ``resume`` policy:

  ``same-version`` (default): reuse records made by this fairbench version, whatever the commit,
  and print their version and commits; records of the run's cells made by another version stop
  the run (exit 2) with the two ways out (``resume=always`` or a new ``out=``).
  ``always``: reuse every finished record, saying which versions and commits made them.
  ``never``: reuse nothing; a folder that holds finished records of the run's cells is refused.

A finished cell is never computed or recorded twice; a failed one is retried and its new record
is appended after the failed one (tables read only ``status: ok`` records).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..core.atomic import write_text_atomic
from ..core.errors import FairbenchError
from ..core.provenance import git_commit
from ..core.version import __version__
from .results import RESULTS_FILE, append_record, drop_torn_last_line, load_records, read_records
from .settings import RESUME_POLICIES

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
LOCK_INFO = ".lock.json"
CELLS_DIR = "cells"  # one file per finished cell, written by Slurm jobs, merged by the driver


def command_line() -> str:
    return shlex.join(["fairbench", *sys.argv[1:]]) if Path(sys.argv[0]).name != "-c" else "fairbench"


def _holder(out: Path) -> str:
    try:
        info = json.loads((out / LOCK_INFO).read_text())
        return f"process {info['pid']} on {info['host']} (`{info['command']}`, started {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its details are not readable)"


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block; a second holder is refused at once, naming the first."""
    lock = FileLock(str(out / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FairbenchError(
            f"out={out} is in use by {_holder(out)}; wait for it to finish, or choose another out="
        ) from None
    try:
        write_text_atomic(
            out / LOCK_INFO,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": command_line(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                }
            )
            + "\n",
        )
        yield
    finally:
        (out / LOCK_INFO).unlink(missing_ok=True)
        lock.release()


def merge_cell_files(out: Path, records: list[dict], log: Callable[[str], None]) -> int:
    """Append the records of ``cells/*.jsonl`` not yet in ``records`` (a Slurm job finished while no
    driver was there to merge it), then delete the files; returns how many records were added."""
    folder = out / CELLS_DIR
    known = {(r["cell_id"], r["status"], r.get("created")) for r in records}
    added = 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        try:
            found = load_records(path)
        except FairbenchError as error:
            path.rename(path.with_suffix(".corrupt"))
            log(
                f"fairbench: warning: {error}; set aside as {path.with_suffix('.corrupt').name}, its cell is recomputed"
            )
            continue
        for record in found:
            if (record["cell_id"], record["status"], record.get("created")) not in known:
                append_record(out, record)
                records.append(record)
                added += 1
        path.unlink()
    return added


def _describe(protocol: dict) -> str:
    evaluator = protocol.get("evaluator") or {}
    epochs = (evaluator.get("train") or {}).get("epochs")
    return (
        f"suite {protocol.get('suite')}: {protocol.get('dataset', {}).get('name')} ipc={protocol.get('ipc')} "
        f"{protocol.get('method', {}).get('id')} on {evaluator.get('name')}"
        + (f" ({epochs} ep)" if epochs is not None else "")
    )


def describe_holdings(records: list[dict], run_protocols: set[str], log: Callable[[str], None]) -> None:
    """Say which protocols ``records`` hold, setting apart those this run does not measure."""
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return
    counts = Counter(r.get("protocol_id") for r in ok)
    others = {r.get("protocol_id"): r for r in ok if r.get("protocol_id") not in run_protocols}
    log(
        f"fairbench: the out folder holds {len(ok)} finished records of {len(counts)} protocols; "
        f"{len(counts) - len(others)} of them are this run's"
    )
    for pid, record in list(others.items())[:10]:
        protocol = record.get("protocol") or {}
        log(f"  other protocol {pid}: {_describe(protocol)}, {counts[pid]} records (kept apart in the tables)")
    if len(others) > 10:
        log(f"  ... and {len(others) - 10} more other protocols")


def _made_by(records: list[dict]) -> str:
    counts = Counter((r.get("fairbench_version"), r.get("git_commit")) for r in records)
    return "; ".join(
        f"{n} by fairbench {version} at commit {commit or 'unknown'}" for (version, commit), n in counts.most_common()
    )


def reusable(records: list[dict], run_cells: set[str], policy: str, log: Callable[[str], None]) -> set[str]:
    """The cell ids of this run already finished in the folder that ``policy`` lets the run reuse."""
    if policy not in RESUME_POLICIES:
        raise FairbenchError(f"unknown resume policy '{policy}'; choose from: {', '.join(RESUME_POLICIES)}")
    finished = [r for r in records if r.get("status") == "ok" and r["cell_id"] in run_cells]
    if not finished:
        return set()
    if policy == "never":
        raise FairbenchError(
            f"resume=never, but the out folder holds {len(finished)} finished records of this "
            f"run's cells; choose a new out=, or resume=same-version to reuse them"
        )
    if policy == "same-version":
        other = [r for r in finished if r.get("fairbench_version") != __version__]
        if other:
            raise FairbenchError(
                f"{len(other)} finished records of this run's cells were made by another "
                f"version ({_made_by(other)}), this is fairbench {__version__}; resume=always "
                f"reuses them, or choose a new out= to recompute"
            )
    log(
        f"fairbench: reusing {len(finished)} finished records ({_made_by(finished)}; this run: fairbench "
        f"{__version__} at commit {git_commit() or 'unknown'})"
    )
    return {r["cell_id"] for r in finished}


def repaired_records(out: Path, log: Callable[[str], None]) -> list[dict]:
    """The folder's records after repairs only the lock holder may make: a torn last line cut
    off, and cell files left by Slurm jobs merged."""
    records = read_records(out, missing_ok=True)
    if drop_torn_last_line(out):
        log(f"fairbench: warning: cut off the torn last line of {out / RESULTS_FILE} (an interrupted write)")
    added = merge_cell_files(out, records, log)
    if added:
        log(f"fairbench: merged {added} records that jobs finished after their driver stopped")
    return records
