"""The canonical leaderboard store: one JSON file per verified cell under ``leaderboard/entries/``.

In the style of RobustBench, an entry keeps what the submitter *reported* beside what fairbench
*measured* when it verified the bundle, with everything needed to judge the two: the protocol and
its id, the verification's evaluation seeds and master seed, the device and its fingerprint, the
versions and commit, the tolerances, the test-contact distances, and the method's provenance
(built-in, or a plugin's name, version and source hash). Rendered tables read only these files.

An entry file is named ``<dataset>-ipc<ipc>-<method>-<evaluator>-<protocol id>-s<seed>.json``,
its *cell key*. Adding the same synthetic set again (a re-verification: same cell key, same
SHA-256) replaces its file; a bundle that brings another set for a cell key the store holds is
refused, naming the entry that holds it, before anything is computed, and again under the store's
lock (``entries/.lock``) when the entries are written, so of two concurrent adds one wins and the
other is told.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from filelock import FileLock

from ..core.atomic import write_text_atomic
from ..core.errors import FairbenchError
from .bundle import open_bundle
from .manifest import META_KEYS
from .protocols import protocol_run_config

FORMAT = "fairbench-entry/1"
ENTRIES = "entries"


def entry_name(entry: dict) -> str:
    stem = (
        f"{entry['dataset']}-ipc{entry['ipc']}-{entry['method']}-{entry['evaluator']}-"
        f"{entry['protocol_id']}-s{entry['seed']}"
    )
    return re.sub(r"[^\w.+-]", "_", stem) + ".json"


def make_entries(manifest: dict, verification: dict) -> list[dict]:
    """One entry per manifest cell of a verified bundle."""
    submission = {k: manifest[k] for k in META_KEYS if k in manifest}
    entries = []
    for cell, checked in zip(manifest["cells"], verification["cells"]):
        contact = verification["sets"][cell["synset"]].get("contact")
        entries.append(
            {
                "format": FORMAT,
                **{
                    k: cell[k]
                    for k in (
                        "dataset",
                        "dataset_params",
                        "ipc",
                        "method",
                        "seed",
                        "evaluator",
                        "protocol_id",
                        "protocol",
                        "provenance",
                        "synset_sha256",
                    )
                },
                **({"sweep": cell["sweep"]} if cell.get("sweep") else {}),  # a sweep's values, for its figures
                "reported": {
                    "metrics": cell["claimed"],
                    "eval_seeds": cell["eval_seeds"],
                    "measured_on": cell.get("measured_on"),
                    "timing": cell.get("timing"),
                },
                "measured": {
                    "metrics": checked["measured"],
                    "group_acc": checked["group_acc"],
                    "eval_seeds": checked["eval_seeds"],
                    "master_seed": verification["seed"],
                    "tolerance": checked["tolerance"],
                    "contact": contact,
                    "device": verification["device"],
                    "fingerprint": verification["fingerprint"],
                    "fairbench_version": verification["fairbench_version"],
                    "torch_version": verification["torch_version"],
                    "git_commit": verification["git_commit"],
                    "verified_at": verification["verified_at"],
                },
                "submission": submission,
            }
        )
    return entries


def add_bundle(bundle: str | Path, root: str | Path, verifier) -> tuple[dict, list[Path]]:
    """Verify ``bundle`` (unpacked once); when it passes, write its entries under ``root/entries``.

    Returns (verification, written files); nothing is written for a bundle that fails, and a
    bundle whose sets would replace another submission's entries is refused (module docstring).
    """
    folder = Path(root) / ENTRIES
    with open_bundle(bundle) as (manifest, files):
        _refuse_taken(bundle, manifest["cells"], folder)
        verification = verifier.verify_opened(bundle, manifest, files)
        if not verification["verified"]:
            return verification, []
        entries = make_entries(manifest, verification)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with FileLock(folder / ".lock"):
        _refuse_taken(bundle, entries, folder)
        for entry in entries:
            path = folder / entry_name(entry)
            write_text_atomic(path, json.dumps(entry, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return verification, written


def _refuse_taken(bundle, cells: list[dict], folder: Path) -> None:
    """Refuse cells whose cell key an entry of another synthetic set holds."""
    for cell in cells:
        path = folder / entry_name(cell)
        if not path.is_file():
            continue
        try:
            held = json.loads(path.read_text()).get("synset_sha256")
        except (OSError, ValueError, AttributeError):
            held = None
        if held != cell["synset_sha256"]:
            raise FairbenchError(
                f"{bundle}: the leaderboard already holds {path} for the cell {entry_name(cell)[:-5]} "
                f"(another synthetic set); remove that entry first to replace it"
            )


def read_entries(root: str | Path) -> list[dict]:
    """Every entry under ``root/entries``, in file-name order."""
    return read_entry_files(Path(root) / ENTRIES)


def read_entry_files(folder: str | Path) -> list[dict]:
    """Every entry file (``*.json``) of ``folder``, in file-name order; anything else is an error."""
    folder = Path(folder)
    entries = []
    for path in sorted(folder.glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise FairbenchError(f"{path}: not JSON ({error})") from None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            raise FairbenchError(f"{path}: not a {FORMAT} entry")
        entries.append(entry)
    return entries


def entry_record(entry: dict) -> dict:
    """An entry as the record ``fairbench regress`` compares: its verified (fresh) runs, under its
    protocol, with the run configuration that rebuilds that protocol from run keys. The rerun
    checks that the rebuilt protocol has the entry's id before it computes anything."""
    measured = entry["measured"]
    run_config = protocol_run_config(entry["protocol"], entry["seed"], len(measured["eval_seeds"]))
    evaluator = entry["protocol"]["evaluator"]
    return {
        "dataset": entry["dataset"],
        "method": entry["method"],
        "ipc": entry["ipc"],
        "seed": entry["seed"],
        "evaluator": evaluator["name"],
        "protocol_id": entry["protocol_id"],
        "status": "ok",
        "metrics": measured["metrics"],
        "fingerprint": measured.get("fingerprint"),
        "eval_seeds": measured["eval_seeds"],
        "run_config": run_config,
    }
