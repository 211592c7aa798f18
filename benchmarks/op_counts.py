"""aten operations per DM iteration, counted with torch.profiler: what a GPU step launches.

On a GPU a DM step is little arithmetic in many launches, so the number of operations per
iteration bounds its speed. Counted on the CPU with every batch in one call (tiling off, as on a
GPU), in the middle iteration of a run of three: neither set-up nor the divergence check at the
run's end is counted, in two settings: 2 classes (CelebA's attractive/not) and 10
classes (CMNIST, CIFAR-10, and the speed benchmark's setting), where DSA's one transform per class
makes up to six transforms run each step. ``top-level`` counts the operations Python dispatches
(each at least one kernel launch on a GPU, save views); ``launching`` leaves out the views and
other operations of ``VIEWS``, which launch nothing; ``all`` also counts the operations they call
inside. ``benchmarks/op_counts.json`` holds the committed counts that ``tests/test_op_counts.py``
guards (``--write`` refreshes it).

    python benchmarks/op_counts.py            # the table in docs/speed.md
    python benchmarks/op_counts.py --write    # refresh benchmarks/op_counts.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import torch
from torch.profiler import ProfilerActivity, profile

from fairbench.distill import DistillContext, build_distiller, method_hparams, tiling
from fairbench.distill.base import synchronize
from fairbench.models import build_model
from fairbench.run.bench import synthetic_dataset

BASELINE = Path(__file__).with_name("op_counts.json")
VIEWS = frozenset(
    "aten::" + name
    for name in (
        "alias as_strided detach expand flatten lift_fresh narrow permute reshape select slice split "
        "split_with_sizes squeeze t transpose unbind unflatten unsqueeze view view_as _unsafe_view _reshape_alias "
        "empty empty_like empty_strided resolve_conj resolve_neg"
    ).split()
)
METHODS = ("dm", "dm+fairdd", "dm+cobra", "dm+wbary")
SMALL = {"groups": 2, "ipc": 2, "image_size": 16, "width": 8}  # counts do not depend on sizes
SETTINGS = {
    "2 classes": {"classes": 2, "real_batch": 8, **SMALL},
    "10 classes": {"classes": 10, "real_batch": 4, **SMALL},
}


def profile_iteration(prof: profile, iteration: int, device: torch.device | None = None):
    """A distiller's ``progress`` wrapper that profiles the body of one iteration of its loop
    (synchronising ``device`` first, so a GPU's kernels are in)."""

    def progress(iterations, **_):
        for it in iterations:
            if it == iteration:
                prof.start()
            yield it
            if it == iteration:
                if device is not None:
                    synchronize(device)
                prof.stop()

    return progress


def op_counts(method: str, setting: str = "10 classes", seed: int = 0) -> dict[str, int]:
    """aten operations of the middle iteration of a 3-iteration run of ``method``: top-level,
    launching (top-level, views left out) and all (nested included)."""
    torch.manual_seed(seed)
    s = SETTINGS[setting]
    train = synthetic_dataset(s["classes"], s["groups"], s["real_batch"] + 4, s["image_size"], torch.device("cpu"))
    hp = {**method_hparams(method, "", s["ipc"]), "iterations": 3, "real_batch": s["real_batch"]}
    prof = profile(activities=[ProfilerActivity.CPU])

    def make_net():
        return build_model("convnet", 3, s["classes"], s["image_size"], width=s["width"])

    ctx = DistillContext(device=torch.device("cpu"), make_net=make_net, progress=profile_iteration(prof, 1))
    with mock.patch.object(tiling, "CPU_TILE", len(train)):  # one call per batch, as on a GPU
        build_distiller(method, hp).distill(train, s["ipc"], ctx)
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return {"top_level": len(top), "launching": sum(e.name not in VIEWS for e in top), "all": len(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--write", action="store_true", help=f"write the counts to {BASELINE.name}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = {setting: {method: op_counts(method, setting) for method in args.methods} for setting in SETTINGS}
    if args.write:
        BASELINE.write_text(json.dumps(counts, indent=1) + "\n")
    print(f"sizes: {SMALL}")
    print("| setting | method | top-level aten ops / iteration | launching | all, nested included |")
    print("|---|---|---|---|---|")
    for setting, by_method in counts.items():
        for method, c in by_method.items():
            print(f"| {setting} | {method} | {c['top_level']} | {c['launching']} | {c['all']} |")


if __name__ == "__main__":
    main()
