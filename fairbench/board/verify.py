"""``fairbench verify BUNDLE``: re-measure a submission instead of trusting it.

Every synthetic set of the bundle is checked as a file and as data, then re-evaluated under each
of its cells' protocols on this machine with *fresh* evaluation seeds, drawn now from a master
seed that is recorded (``seed=N`` replays a draw). The checks, each a reason when it fails:

- file: the set is the file the manifest names (SHA-256), a safetensors file holding ``images``
  and ``labels``, whose metadata names the cell's dataset, IPC and method;
- protocol: the cell's protocol id is the hash of its protocol, which names the cell's dataset,
  IPC and method;
- shape: ``images`` is (classes × ipc × factor², C, H, W) for the dataset's image shape (factor
  is IDC's multi-formation factor, from the set's ``factor`` extra; 1 otherwise, and a
  ``stored_per_class`` extra must equal the IPC); ``labels`` holds every class exactly
  ipc × factor² times and nothing else;
- values: finite, and within the dataset's normalised pixel range widened on each side by
  ``range_margin`` (default 10) times its width: distillers optimise pixels freely, while
  unnormalised 0-255 images reach hundreds (docs/leaderboard.md gives the honest sets measured);
- claims: each claimed mean is the mean of its claimed runs, one run per claimed seed;
- measured: for each checked metric, |measured mean − claimed mean| ≤ tolerance, with
  ``tolerance = max(floor, t · s · sqrt(1/n_c + 1/n_m))``: the standard error of the difference of
  two means of n_c claimed and n_m measured runs, which an honest claim draws from the same
  distribution as the fresh runs (same set, same protocol, other seeds). Its spread s is
  estimated from the *measured* runs only (sample standard deviation, ddof 1): they are many
  (``num_eval``, default 10) and cannot be shaped by the submitter, while a claim's two or three
  runs estimate a spread badly (docs/leaderboard.md: an honest claim that this rule accepts and
  a claim-based rule rejected). t is
  Student's t quantile at n_m − 1 degrees of freedom for the two-sided level of ``z`` normal
  standard errors (default z = 3: 0.27%), so few fresh runs widen it (t = 4.09 at 10 runs, 19.2
  at 3). s is at least ``min_std`` (default 3.0 points), twice that for a max or worst case
  (``deo_max``, ``suff_max``, ``worst_group_acc``), which moves in steps of a whole test cell (in
  the ratio of ``fairbench regress``'s minimum effects): a quantised metric can sit still over
  the fresh runs and move a step in the claimed ones. The floor (default 2.0 points) covers
  metrics with no spread at all. A claim of few runs is thus checked loosely, and says so:
  the tolerance is printed beside every comparison;
- test contact: no synthetic image sits much nearer a test image than any training image
  (:mod:`fairbench.board.contact`, the data-copying test).

The result is a JSON-able dict, which ``fairbench leaderboard add`` stores with the entry.
"""

from __future__ import annotations

import math
import random
import secrets
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from ..core.device import resolve_device
from ..core.errors import FairbenchError, unknown_choice
from ..core.protocol import protocol_id
from ..core.provenance import device_label, git_commit, machine_fingerprint
from ..core.version import __version__
from ..data import DatasetSplits, load_dataset
from ..distill.synsets import SynsetUnreadable, load_synset
from ..evaluation.evaluate import evaluate_synthetic
from ..evaluation.metrics import METRICS, MIN_EFFECT, group_acc_runs, summarize_runs
from ..run.config import merge_settings
from ..run.fit import check_network_fits, ensemble_runs
from .bundle import BundleUnreadable, open_bundle, sha256
from .contact import RATIO_EPS, ContactIndex
from .protocols import PROTOCOL_POLICIES, check_rebuilds, suite_of

VERIFY_DEFAULTS = {
    "device": "auto",
    "data_root": "data",
    "download": False,
    "ensemble": "auto",
    "num_eval": 10,  # fresh evaluation runs per cell; their spread sets the tolerance
    "seed": None,  # master seed of the fresh evaluation seeds; None: drawn from the OS
    "metrics": ["acc", "deo_max", "deo_mean"],
    "z": 3.0,
    "floor": 2.0,
    "min_std": 3.0,  # the tolerance (module docstring)
    "range_margin": 10.0,
    "contact_ratio": RATIO_EPS,  # flag an image nearer the test split than this times its train distance
    "protocols": "registered",  # or any: also protocols no registered suite defines (a maintainer's call)
}


def verify_settings(args: list[str]) -> dict:
    """``key=value`` settings over :data:`VERIFY_DEFAULTS`, checked."""
    for arg in args:
        key = arg.partition("=")[0]
        if "=" not in arg:
            raise FairbenchError(
                f"'{arg}' is not a key=value setting; verify takes one bundle, then settings such as num_eval=10"
            )
        if key not in VERIFY_DEFAULTS:
            raise unknown_choice("verify setting", key, VERIFY_DEFAULTS)
    settings = merge_settings(VERIFY_DEFAULTS, dotlist=list(args))
    for metric in settings["metrics"]:
        if metric not in METRICS:
            raise unknown_choice("metric", metric, METRICS)
    if not isinstance(settings["num_eval"], int) or isinstance(settings["num_eval"], bool) or settings["num_eval"] < 3:
        raise FairbenchError(
            f"num_eval must be an integer of at least 3 (the tolerance rests on the fresh runs' "
            f"spread; 10 is the default), got {settings['num_eval']!r}"
        )
    if settings["protocols"] not in PROTOCOL_POLICIES:
        raise unknown_choice("protocols policy", settings["protocols"], PROTOCOL_POLICIES)
    for key in ("z", "floor", "min_std", "range_margin", "contact_ratio"):
        if not isinstance(settings[key], (int, float)) or isinstance(settings[key], bool) or settings[key] < 0:
            raise FairbenchError(f"{key} must be a non-negative number, got {settings[key]!r}")
    return settings


def tolerance(claimed_runs: int, measured: list[float], z: float, floor: float, min_std: float = 0.0) -> float:
    """The largest |mean difference| between ``claimed_runs`` honest claimed runs and the
    ``measured`` fresh runs of the same set (module docstring)."""
    spread = max(float(np.std(measured, ddof=1)), min_std)
    quantile = float(stats.t.ppf(stats.norm.cdf(z), len(measured) - 1))
    return max(floor, quantile * spread * math.sqrt(1 / claimed_runs + 1 / len(measured)))


class Verifier:
    """Verifies bundles on one device, keeping datasets and contact indexes between bundles."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.device = resolve_device(settings["device"])
        self._datasets: dict[str, DatasetSplits] = {}
        self._indexes: dict[str, ContactIndex] = {}

    def dataset(self, name: str, params: dict) -> DatasetSplits:
        key = protocol_id({"name": name, "params": params})
        if key not in self._datasets:
            self._datasets[key] = load_dataset(
                name, self.settings["data_root"], params, download=self.settings["download"]
            )
        return self._datasets[key]

    def contact_index(self, name: str, params: dict) -> ContactIndex:
        key = protocol_id({"name": name, "params": params})
        if key not in self._indexes:
            splits = self.dataset(name, params)
            self._indexes[key] = ContactIndex(splits.train, splits.test, self.device)
        return self._indexes[key]

    def verify(self, bundle: str | Path) -> dict:
        """The verification of ``bundle``: per set its checks, per cell claimed beside measured."""
        with open_bundle(bundle) as (manifest, folder):
            return self.verify_opened(bundle, manifest, folder)

    def verify_opened(self, bundle: str | Path, manifest: dict, folder: Path) -> dict:
        """:meth:`verify` of a bundle already opened (its schema-checked manifest and files).

        Every cell's protocol is checked (:mod:`fairbench.board.protocols`) before any set is
        read, and every network's fit before any evaluation: a protocol fairbench run would refuse,
        one no registered suite defines (unless ``protocols=any``) or one whose networks this
        machine cannot hold stops the verification with one line (exit 2)."""
        master = self.settings["seed"] if self.settings["seed"] is not None else secrets.randbits(31)
        draw = random.Random(master)
        cells = manifest["cells"]
        suites = {number: self._check_protocol(bundle, number, cell) for number, cell in enumerate(cells)}
        files = {cell["synset"]: self._read_set(bundle, folder, cell) for cell in cells}
        for number, cell in enumerate(cells):
            if suites[number] is not False:
                self._check_fit(bundle, number, cell, self.dataset(cell["dataset"], cell["dataset_params"]))
        sets, loaded = {}, {}
        for cell in cells:
            if cell["synset"] not in sets:
                sets[cell["synset"]], loaded[cell["synset"]] = self._check_set(cell, *files[cell["synset"]])
        cells = [
            self._check_cell(cell, loaded[cell["synset"]], draw) | {"suite": suites[number] or None}
            for number, cell in enumerate(manifest["cells"])
        ]
        reasons = [f"{name}: {reason}" for name, checked in sets.items() for reason in checked["reasons"]]
        reasons += [f"{c['label']}: {reason}" for c in cells for reason in c["reasons"]]
        return {
            "bundle": str(bundle),
            "verified": not reasons,
            "reasons": reasons,
            "seed": master,
            "settings": self.settings,
            "sets": sets,
            "cells": cells,
            "device": device_label(self.device),
            "fingerprint": machine_fingerprint(self.device),
            "fairbench_version": __version__,
            "torch_version": torch.__version__,
            "git_commit": git_commit(),
            "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def _check_protocol(self, bundle, number: int, cell: dict) -> str | None | bool:
        """The registered suite that defines the cell's protocol (None: none does, and
        ``protocols=any`` accepts it; False: its protocol fails its hash or naming checks, a
        reason of its own). A protocol that fairbench run refuses, or that no suite defines under
        ``protocols=registered``, is refused here, before anything is read."""
        if _protocol_reasons(cell):
            return False
        try:
            check_rebuilds(cell, self.settings["num_eval"])
        except FairbenchError as error:
            raise FairbenchError(f"{bundle}: cell {number} ({_label(cell)}): {error}") from None
        suite = suite_of(cell)
        if suite is None and self.settings["protocols"] == "registered":
            raise FairbenchError(
                f"{bundle}: cell {number} ({_label(cell)}): its protocol {cell['protocol_id']} is defined by no "
                f"registered suite (its own suite {cell['protocol']['suite']!r} does not make it; fairbench list "
                f"suites); a maintainer who accepts it passes protocols=any"
            )
        return suite

    def _check_fit(self, bundle, number: int, cell: dict, splits: DatasetSplits) -> None:
        train = splits.train
        runs = ensemble_runs(self.settings["ensemble"], self.settings["num_eval"], self.device)
        try:
            check_network_fits(cell["protocol"]["evaluator"], train.image_shape, train.num_classes, runs, self.device)
        except FairbenchError as error:
            raise FairbenchError(f"{bundle}: cell {number} ({_label(cell)}): {error}") from None

    def _read_set(self, bundle, folder: Path, cell: dict):
        """(the file's reason, None) or (None, (set, metadata)); a file that is the one named but
        no readable synthetic set is refused (exit 2), named inside the bundle."""
        path = folder / cell["synset"]
        if not path.is_file():
            return "file missing from the bundle", None
        if sha256(path) != cell["synset_sha256"]:
            return "the file is not the one the manifest names (SHA-256 differs)", None
        try:
            return None, load_synset(path)
        except SynsetUnreadable as error:
            raise BundleUnreadable(str(error).replace(str(path), f"{bundle}:{cell['synset']}", 1)) from None

    def _check_set(self, cell: dict, reason: str | None, read):
        """The shape and value checks and the contact check of one synthetic set read whole."""
        if read is None:
            return {"reasons": [reason]}, None
        syn, metadata = read
        reasons = [
            f"its metadata says {key} {metadata.get(key)!r}, the manifest {cell[key]!r}"
            for key in ("dataset", "ipc", "method")
            if metadata.get(key) != cell[key]
        ]
        splits = self.dataset(cell["dataset"], cell["dataset_params"])
        reasons += shape_reasons(syn, splits, cell["ipc"])
        reasons += _value_reasons(syn.images, splits, self.settings["range_margin"])
        checked = {"images": list(syn.images.shape), "extras": syn.extras}
        if not reasons:
            contact = self.contact_index(cell["dataset"], cell["dataset_params"]).contact(
                syn.images, self.settings["contact_ratio"]
            )
            checked["contact"] = contact.as_dict()
            if contact.flagged:
                reasons.append(
                    f"test-set contact: {contact.count} of {contact.images} images sit nearer a test image than "
                    f"{contact.ratio_eps} times their nearest training image (distance ratio test/train: "
                    f"smallest {contact.min_ratio:.3f}, median {contact.median_ratio:.3f})"
                )
        checked["reasons"] = reasons
        return checked, (syn, splits) if not reasons else None

    def _check_cell(self, cell: dict, loaded, draw: random.Random) -> dict:
        result = {
            "label": _label(cell),
            "dataset": cell["dataset"],
            "ipc": cell["ipc"],
            "method": cell["method"],
            "seed": cell["seed"],
            "evaluator": cell["evaluator"],
            "protocol_id": cell["protocol_id"],
            "claimed": cell["claimed"],
        }
        reasons = _protocol_reasons(cell) + _claim_reasons(cell, self.settings["metrics"])
        if loaded is None:
            reasons.append("not re-evaluated: its synthetic set failed its checks")
        if reasons:
            return result | {"reasons": reasons}
        syn, splits = loaded
        seeds = _fresh_seeds(draw, self.settings["num_eval"], set(cell["eval_seeds"]))
        evaluation = evaluate_synthetic(
            syn, splits.test, cell["protocol"]["evaluator"], seeds, self.device, ensemble=self.settings["ensemble"]
        )
        measured, tolerances = summarize_runs(evaluation.runs), {}
        for metric in self.settings["metrics"]:
            claimed = cell["claimed"][metric]
            # a max or a worst case over classes or groups moves in steps of a whole test cell:
            # its least spread scales as regress's minimum effects do (twice a mean's)
            min_std = self.settings["min_std"] * MIN_EFFECT[metric] / MIN_EFFECT["acc"]
            tol = tolerance(
                len(claimed["runs"]), measured[metric]["runs"], self.settings["z"], self.settings["floor"], min_std
            )
            tolerances[metric] = tol
            gap = abs(measured[metric]["mean"] - claimed["mean"])
            if not gap <= tol:
                reasons.append(
                    f"{metric}: claimed {claimed['mean']:.2f}, measured {measured[metric]['mean']:.2f} "
                    f"(difference {gap:.2f} > tolerance {tol:.2f})"
                )
        return result | {
            "eval_seeds": seeds,
            "measured": measured,
            "tolerance": tolerances,
            "reasons": reasons,
            "group_acc": group_acc_runs(evaluation.runs, splits.test.group_names),
        }


def _label(cell: dict) -> str:
    return f"{cell['method']} on {cell['dataset']} ipc {cell['ipc']} seed {cell['seed']} ({cell['evaluator']})"


def _fresh_seeds(draw: random.Random, count: int, used: set[int]) -> list[int]:
    seeds: list[int] = []
    while len(seeds) < count:
        seed = draw.randrange(2**31)
        if seed not in used and seed not in seeds:
            seeds.append(seed)
    return seeds


def shape_reasons(syn, splits: DatasetSplits, ipc: int) -> list[str]:
    train = splits.train
    factor = int(syn.extras.get("factor", 1))
    per_class = ipc * factor**2
    reasons = []
    if "stored_per_class" in syn.extras and syn.extras["stored_per_class"] != ipc:
        reasons.append(f"stored_per_class {syn.extras['stored_per_class']} is not the ipc {ipc}")
    expected = (train.num_classes * per_class, *train.image_shape)
    if tuple(syn.images.shape) != expected or not syn.images.is_floating_point():
        reasons.append(
            f"images are {syn.images.dtype} {tuple(syn.images.shape)}, expected float "
            f"{expected} (classes x ipc{' x factor²' if factor > 1 else ''}, then the image shape)"
        )
    labels = syn.labels
    if labels.dim() != 1 or len(labels) != expected[0]:
        reasons.append(f"labels are shaped {tuple(labels.shape)}, expected ({expected[0]},)")
    elif (
        labels.min() < 0
        or labels.max() >= train.num_classes
        or not bool((torch.bincount(labels, minlength=train.num_classes) == per_class).all())
    ):
        reasons.append(f"labels are not classes 0..{train.num_classes - 1} with {per_class} images each")
    return reasons


def _value_reasons(images: torch.Tensor, splits: DatasetSplits, margin: float) -> list[str]:
    if not images.is_floating_point():
        return []
    if not bool(torch.isfinite(images).all()):
        return [f"{int((~torch.isfinite(images)).sum())} image values are NaN or infinite"]
    train = splits.train
    if images.shape[1] != len(train.mean):
        return []  # a shape reason already
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (train.mean, train.std))
    low, high = -mean / std, (1 - mean) / std
    width = high - low
    outside = (images < low - margin * width) | (images > high + margin * width)
    if bool(outside.any()):
        return [
            f"{int(outside.sum())} image values lie outside the normalised range "
            f"[{float(low.min()):.2f}, {float(high.max()):.2f}] widened by {margin} x its width "
            f"(min {float(images.min()):.2f}, max {float(images.max()):.2f}); are the images normalised?"
        ]
    return []


def _protocol_reasons(cell: dict) -> list[str]:
    protocol = cell["protocol"]
    reasons = []
    if protocol_id(protocol) != cell["protocol_id"]:
        reasons.append(f"protocol id {cell['protocol_id']} is not the hash of its protocol ({protocol_id(protocol)})")
    named = {
        "dataset": protocol.get("dataset", {}).get("name"),
        "ipc": protocol.get("ipc"),
        "method": protocol.get("method", {}).get("id"),
        "evaluator": protocol.get("evaluator", {}).get("name"),
    }
    reasons += [
        f"its protocol names {key} {value!r}, the cell {cell[key]!r}"
        for key, value in named.items()
        if value != cell[key]
    ]
    if protocol.get("dataset", {}).get("params") != cell["dataset_params"]:
        reasons.append("its protocol's dataset parameters are not the cell's")
    return reasons


def _claim_reasons(cell: dict, checked: list[str]) -> list[str]:
    """Each claimed metric must be consistent; the ``checked`` ones must be claimed (a bundle older
    than a metric does not claim it, and an unchecked metric it lacks is absent)."""
    reasons = [f"claims {name!r}, which is no metric" for name in cell["claimed"] if name not in METRICS]
    for metric in METRICS:
        claim = cell["claimed"].get(metric)
        if claim is None and metric not in checked:
            continue
        if not isinstance(claim, dict) or not claim.get("runs"):
            reasons.append(f"claims no runs of {metric}")
            continue
        if len(claim["runs"]) != len(cell["eval_seeds"]):
            reasons.append(f"{metric}: {len(claim['runs'])} claimed runs for {len(cell['eval_seeds'])} seeds")
        if not math.isclose(float(np.mean(claim["runs"])), claim["mean"], rel_tol=1e-6, abs_tol=1e-6):
            reasons.append(
                f"{metric}: the claimed mean {claim['mean']:.2f} is not the mean of its claimed "
                f"runs ({float(np.mean(claim['runs'])):.2f})"
            )
    return reasons


def render_verification(result: dict) -> str:
    """Claimed beside measured per cell and metric, then the verdict and its reasons."""
    from tabulate import tabulate

    rows = []
    for cell in result["cells"]:
        for metric in result["settings"]["metrics"]:
            measured = cell.get("measured", {}).get(metric, {}).get("mean")
            claimed = (cell["claimed"].get(metric) or {}).get("mean")
            tol = cell.get("tolerance", {}).get(metric)
            verdict = (
                "" if measured is None or claimed is None else ("ok" if abs(measured - claimed) <= tol else "FAIL")
            )
            rows.append([cell["label"], metric, claimed, measured, tol, verdict])
    text = tabulate(rows, headers=["cell", "metric", "claimed", "measured", "tolerance", ""], floatfmt=".2f")
    for cell in result["cells"]:
        suite = cell.get("suite")
        text += f"\nprotocol {cell['protocol_id']} of {cell['label']}: " + (
            f"the protocol of registered suite {suite}" if suite else "defined by no registered suite (protocols=any)"
        )
    text += f"\n\nevaluation seeds drawn from master seed {result['seed']} on {result['device']}\n"
    if result["verified"]:
        return text + "verified: every check passed"
    return text + "NOT verified:\n" + "\n".join(f"  - {reason}" for reason in result["reasons"])
