"""``fairbench submit RUN_DIR -o BUNDLE``: a run's synthetic sets and claims as a bundle.

One manifest cell per synthetic set × evaluation protocol: the run's records of that pair are
merged with each evaluation run once (:func:`fairbench.report.tables.unique_runs`), so what is
claimed is what the run measured, no run counted twice. The sets are copied as they are (they are
already safetensors) and each is checked to load before anything is written.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import yaml

from ..core.errors import FairbenchError, unknown_choice
from ..core.version import __version__
from ..distill.synsets import load_synset
from ..evaluation.metrics import summarize_runs
from ..report.tables import record_protocol, unique_runs
from ..run.results import read_records
from .bundle import FORMAT, sha256, write_bundle
from .manifest import META_KEYS, check_manifest, check_meta


def read_meta(path: str | Path | None) -> dict:
    """The submitter's ``name``, ``paper``, ``code``, ``authors`` and ``notes`` from a YAML file."""
    if path is None:
        return {}
    path = Path(path)
    try:
        meta = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise FairbenchError(f"{path}: cannot read the submission's YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise FairbenchError(f"{path}: the submission's YAML must be a mapping of {', '.join(META_KEYS)}")
    for key in meta:
        if key not in META_KEYS:
            raise unknown_choice("submission key", key, META_KEYS)
    return check_meta(meta, str(path))


def claimed_metrics(runs: dict[int, dict]) -> tuple[list[int], dict]:
    """The claim of one cell: its evaluation seeds in order and the summary of their runs."""
    seeds = sorted(runs)
    return seeds, summarize_runs([runs[s] for s in seeds])


def manifest_cells(run_dir: Path, records: list[dict]) -> tuple[list[dict], dict[str, Path]]:
    """The manifest's cells and the synthetic-set files they name (bundle path → run file)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record.get("status") == "ok":
            groups.setdefault((record_protocol(record), record["seed"]), []).append(record)
    cells, files = [], {}
    for (protocol, seed), members in groups.items():
        first = members[0]
        if not first.get("synset"):
            raise FairbenchError(
                f"{run_dir}: the record of {first['method']} on {first['dataset']} names no "
                f"synthetic set (a run from before fairbench kept them); rerun it to submit"
            )
        source = run_dir / first["synset"]
        load_synset(source)  # refuses a missing, damaged or non-safetensors file by name
        name = f"synsets/{Path(first['synset']).name}"
        files[name] = source
        eval_seeds, claimed = claimed_metrics(unique_runs(members)[(protocol, seed)])
        config = first["config"]
        cells.append(
            {
                "dataset": first["dataset"],
                "dataset_params": config["dataset"]["params"],
                "ipc": first["ipc"],
                "method": first["method"],
                "seed": seed,
                "evaluator": first["evaluator"],
                "synset": name,
                "synset_sha256": sha256(source),
                "protocol_id": protocol,
                "protocol": first.get("protocol") or {k: v for k, v in config.items() if k not in ("seed", "num_eval")},
                "claimed": claimed,
                "eval_seeds": eval_seeds,
                "provenance": first.get("provenance", {"source": "built-in"}),
                **({"sweep": first["sweep"]} if first.get("sweep") else {}),
                "measured_on": {
                    "device": first["device"],
                    "fairbench_version": first.get("fairbench_version"),
                    "torch_version": first.get("torch_version"),
                    "git_commit": first.get("git_commit"),
                },
                "timing": {
                    "timing_device": first.get("timing_device"),
                    "iter_ms": first.get("iter_ms"),
                    "distill_s": first.get("distill_s"),
                },
            }
        )
    if not cells:
        raise FairbenchError(f"{run_dir}: no finished cells to submit")
    return cells, files


def submit(run_dir: str | Path, out: str | Path, meta_path: str | Path | None = None) -> Path:
    """Write the bundle of ``run_dir`` to ``out`` (a folder, or a zip when it ends in ``.zip``)."""
    run_dir = Path(run_dir)
    meta = read_meta(meta_path)
    cells, files = manifest_cells(run_dir, read_records(run_dir))
    manifest = {
        "format": FORMAT,
        "fairbench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **meta,
        "cells": cells,
    }
    check_manifest(manifest, f"the manifest of {run_dir}")  # what verify will hold it to
    return write_bundle(Path(out), manifest, files)
