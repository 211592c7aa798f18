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
guards (``--write`` refreshes it; the compiled estimates under ``"compiled"``).

``--compile`` counts the ``distill.compile`` step too, as a GPU would run it under CUDA graphs
(DSA inside the embedding's graph; a first, unprofiled run of the same draws compiles the graphs:
seconds per method): the operations left outside the compiled graphs, plus two launches per graph
call (the copy of its inputs into the graph's own buffers, one ``_foreach_copy_``, and the
graph's replay). An estimate from the CPU's profile, which ``benchmarks/device_checks.sh`` checks
against a GPU's own count.

    python benchmarks/op_counts.py            # the table in docs/speed.md
    python benchmarks/op_counts.py --write    # refresh benchmarks/op_counts.json (eager counts)
    python benchmarks/op_counts.py --compile  # and the compiled step's estimate (--write: it too)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import torch
from torch.profiler import ProfilerActivity, profile

from fairbench.distill import DistillContext, build_distiller, dm, method_hparams, tiling
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
# operations that read a device tensor on the host: on a GPU each waits for the device to catch up
HOST_READS = frozenset("aten::" + name for name in ("_local_scalar_dense", "item", "nonzero", "is_nonzero", "equal"))
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


GRAPH_CALLS = ("Torch-Compiled Region", "CompiledFunctionBackward")  # profiler names of compiled calls


def _in_graph(event) -> bool:
    """Whether a profiled event ran inside a compiled graph (forward or backward)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(GRAPH_CALLS):
            return True
        parent = parent.cpu_parent
    return False


def op_counts(method: str, setting: str = "10 classes", seed: int = 0, compile: bool = False) -> dict[str, int]:
    """aten operations of the middle iteration of a 3-iteration run of ``method``: top-level,
    launching (top-level, views left out) and all (nested included); with ``compile``, instead
    the compiled step's graph calls, its estimated GPU launches (the module's docstring) and its
    reads of a device tensor on the host outside the graphs (a GPU waits at each)."""
    s = SETTINGS[setting]
    hp = {**method_hparams(method, "", s["ipc"]), "iterations": 3, "real_batch": s["real_batch"]}
    if compile:
        hp["compile"] = True
        # DSA's sample counts per transform change from step to step, and each new shape compiles:
        # a first, unprofiled run compiles what the profiled one will call
        _distill(method, hp, s, seed)
    prof = profile(activities=[ProfilerActivity.CPU])
    _distill(method, hp, s, seed, prof)
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    if compile:
        calls = [e for e in prof.events() if e.name.startswith(GRAPH_CALLS) and not _in_graph(e)]
        outside = sum(e.name not in VIEWS and not _in_graph(e) for e in top)
        reads = sum(e.name in HOST_READS and not _in_graph(e) for e in events)
        return {"graph_calls": len(calls), "launching": outside + 2 * len(calls), "host_reads": reads}
    return {"top_level": len(top), "launching": sum(e.name not in VIEWS for e in top), "all": len(events)}


def _distill(method: str, hp: dict, s: dict, seed: int, prof: profile | None = None) -> None:
    """One run of ``method`` in setting ``s``, its middle iteration profiled by ``prof`` if given."""
    torch.manual_seed(seed)
    train = synthetic_dataset(s["classes"], s["groups"], s["real_batch"] + 4, s["image_size"], torch.device("cpu"))

    def make_net():
        return build_model("convnet", 3, s["classes"], s["image_size"], width=s["width"])

    ctx = DistillContext(device=torch.device("cpu"), make_net=make_net)
    if prof is not None:
        ctx.progress = profile_iteration(prof, 1)
    # one call per batch, and DSA inside the compiled embedding, as on a GPU
    with mock.patch.object(tiling, "CPU_TILE", len(train)), mock.patch.object(dm, "captures_graphs", lambda _: True):
        build_distiller(method, hp).distill(train, s["ipc"], ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--write", action="store_true", help=f"write the counts to {BASELINE.name}")
    parser.add_argument("--compile", action="store_true", help="also estimate the distill.compile step's launches")
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = {setting: {method: op_counts(method, setting) for method in args.methods} for setting in SETTINGS}
    compiled = {
        setting: {method: op_counts(method, setting, compile=True) for method in args.methods}
        for setting in (SETTINGS if args.compile else ())
    }
    if args.write:  # the committed compiled estimates stay unless counted again
        previous = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
        written = {**counts, "compiled": compiled or previous.get("compiled", {})}
        BASELINE.write_text(json.dumps(written, indent=1) + "\n")
    print(f"sizes: {SMALL}")
    extra = " compiled: graph calls | compiled: est. GPU launches |" if args.compile else ""
    print(f"| setting | method | top-level aten ops / iteration | launching | all, nested included |{extra}")
    print("|---|---|---|---|---|" + "---|---|" * args.compile)
    for setting, by_method in counts.items():
        for method, c in by_method.items():
            row = f"| {setting} | {method} | {c['top_level']} | {c['launching']} | {c['all']} |"
            if args.compile:
                row += f" {compiled[setting][method]['graph_calls']} | {compiled[setting][method]['launching']} |"
            print(row)


if __name__ == "__main__":
    main()
