"""Every speed goal of the GPU path, measured in one process (goal 5: concurrent processes), each
judged PASS or FAIL, with a JSON report. Run through ``benchmarks/device_checks.sh``.

Goals (full sizes; ``--quick`` runs each with tiny sizes and judges only that it ran and gave
finite numbers, so the script cannot rot, on a CPU in CI):

1. the DM, DM+FairDD and DM+COBRA iteration at IPC 10 against the reference's per-class loop
   (``dm_vs_reference.ReferenceLoop``, the reference code's loop), >= 20 warm-up and >= 50 timed iterations each: DM >= 5x;
2. a C-MNIST-sized DM cell on cmnist-mini (ConvNet width 128, IPC 10): 2,000 iterations timed and
   extrapolated to 20,000, plus an evaluation of 5 runs x 1,000 epochs through the ensemble: the
   whole 20,000-iteration cell under 10 minutes;
3. dm+wbary over dm at IPC 50 (10 groups): <= 1.3x;
4. ensemble against sequential evaluation (5 runs, ConvNet, IPC 10), timing ``fit`` only: >= 3x;
5. 1, 2 and 4 IPC-10 cells sharing one GPU as concurrent ``fairbench run`` processes, in cells
   per hour: 4 cells >= 2.5x the cells per hour of one (``--quick``: 1 and 2 processes);
6. the dm iteration with ``distill.compile`` (CUDA graphs) against eager: no slower, with each
   one's kernel launches per iteration in the report (issue 20's launch goals);
7. dm+cobra's and dm+wbary's iteration with ``distill.compile`` (the warm start's epochs and the
   Sinkhorn solves captured too): fewer kernel launches than eager, each one's count in the report;
8. the kernel launches per iteration with ``distill.compile`` against issue 20's limits: dm and
   dm+fairdd <= 150, dm+cobra <= 600, dm+wbary <= 500.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from dm_vs_reference import MODES, ReferenceLoop  # noqa: E402
from ensemble_speed import measure  # noqa: E402
from op_counts import profile_iteration  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from fairbench.distill import DistillContext, build_distiller, method_hparams  # noqa: E402
from fairbench.evaluation.evaluate import evaluator_spec  # noqa: E402
from fairbench.models import build_model  # noqa: E402
from fairbench.run.bench import BENCH_DEFAULTS, overhead_rows, synthetic_dataset  # noqa: E402

FULL = {
    "loop_warmup": 20,
    "loop_iterations": 50,
    "width": 128,
    "real_batch": 256,
    "cell_iterations": 2000,
    "cell_target_iterations": 20000,
    "eval_runs": 5,
    "eval_epochs": 1000,
    "wbary_ipc": 50,
    "bench_iterations": 10,
    "ensemble_epochs": 20,
    "share_iterations": 1000,
    "ipc": 10,
    "image_size": 32,
    "groups": 10,
    "cobra_warmup_epochs": None,  # the registry's (10 at IPC 10)
    "shares": (1, 2, 4),
}
QUICK = {
    "loop_warmup": 1,
    "loop_iterations": 2,
    "width": 8,
    "real_batch": 16,
    "cell_iterations": 4,
    "cell_target_iterations": 40,
    "eval_runs": 2,
    "eval_epochs": 2,
    "wbary_ipc": 2,
    "bench_iterations": 1,
    "ensemble_epochs": 1,
    "share_iterations": 2,
    "ipc": 1,
    "image_size": 16,
    "groups": 2,
    "cobra_warmup_epochs": 1,
    "shares": (1, 2),
}


def _dm_setting(device, sizes) -> tuple:
    """The data and context of a DM iteration at the check's sizes: 10 classes, ConvNet."""
    torch.manual_seed(0)
    size = sizes["image_size"]
    train = synthetic_dataset(10, sizes["groups"], sizes["real_batch"] + 50, size, device)

    def make_net():
        return build_model("convnet", 3, 10, size, width=sizes["width"])

    return train, DistillContext(device=device, make_net=make_net)


def _hparams(method: str, sizes) -> dict:
    """``method``'s registry hyperparameters at the check's IPC and real batch (and, at quick
    sizes, COBRA's shorter warm start)."""
    hp = {**method_hparams(method, "", sizes["ipc"]), "real_batch": sizes["real_batch"]}
    if method == "dm+cobra" and sizes["cobra_warmup_epochs"] is not None:
        hp["warmup_epochs"] = sizes["cobra_warmup_epochs"]
    return hp


def goal_1(device, sizes) -> dict:
    """fairbench's DM iteration over the per-class loop, for dm, dm+fairdd, dm+cobra."""
    ipc = sizes["ipc"]
    train, ctx = _dm_setting(device, sizes)
    speedups = {}
    for method, mode in MODES.items():
        hp = _hparams(method, sizes)
        # warm-up: as many untimed iterations, then the timed run (its clock leaves out 5 more)
        build_distiller(method, {**hp, "iterations": sizes["loop_warmup"]}).distill(train, ipc, ctx)
        timed = build_distiller(method, {**hp, "iterations": sizes["loop_iterations"] + 5})
        timed.distill(train, ipc, ctx)
        reference = ReferenceLoop(train, ipc, hp, ctx.make_net, device, mode)
        reference.time_ms(sizes["loop_warmup"])  # untimed warm-up iterations
        loop_ms = reference.time_ms(sizes["loop_iterations"])
        speedups[method] = {
            "fairbench_ms": timed.stats.iter_ms,
            "loop_ms": loop_ms,
            "speedup": loop_ms / timed.stats.iter_ms,
        }
    return {
        "value": speedups["dm"]["speedup"],
        "target": ">= 5",
        "ok": speedups["dm"]["speedup"] >= 5,
        "detail": speedups,
    }


def _fairbench(args: list[str], out: Path, device) -> subprocess.Popen:
    command = [sys.executable, "-m", "fairbench", "run", *args, f"device={device}", f"out={out}", "resume=never"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _cell_args(sizes, iterations: int, runs: int, epochs: int) -> list[str]:
    return [
        "suite=ci",
        "methods=[dm]",
        f"ipc=[{sizes['ipc']}]",
        f"distill.iterations={iterations}",
        f"num_eval={runs}",
        f"eval.epochs={epochs}",
        f"models.convnet.width={sizes['width']}",
        "ensemble=true",
    ]


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"fairbench run exited {process.returncode}: {err.strip().splitlines()[-1:]}")


def goal_2(device, sizes, work: Path) -> dict:
    """The whole cell's minutes: measured distillation iterations extrapolated, plus evaluation."""
    out = work / "cell"
    _finish(
        _fairbench(_cell_args(sizes, sizes["cell_iterations"], sizes["eval_runs"], sizes["eval_epochs"]), out, device)
    )
    (record,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    distill_s = record["iter_ms"] * sizes["cell_target_iterations"] / 1000
    minutes = (distill_s + record["eval_s"]) / 60
    detail = {k: record[k] for k in ("iter_ms", "distill_s", "eval_s", "eval_path", "warmup_iterations")}
    return {
        "value": minutes,
        "target": "< 10 minutes",
        "ok": minutes < 10,
        "detail": {**detail, "extrapolated_distill_s": distill_s},
    }


def goal_3(device, sizes) -> dict:
    config = {
        **BENCH_DEFAULTS,
        "device": str(device),
        "methods": ["dm+wbary"],
        "ipc": [sizes["wbary_ipc"]],
        "groups": [sizes["groups"]],
        "image_size": sizes["image_size"],
        "width": sizes["width"],
        "iterations": sizes["bench_iterations"],
        "warmup": 2,
        "repeats": 3,
        "distill": {"real_batch": sizes["real_batch"]},
        "per_class": sizes["real_batch"] + 50,
    }
    rows = overhead_rows(config)
    ratio = next(r["overhead"] for r in rows if r["method"] == "dm+wbary")
    return {"value": ratio, "target": "<= 1.3", "ok": ratio <= 1.3, "detail": rows}


def goal_4(device, sizes) -> dict:
    spec = evaluator_spec("convnet")
    spec["model"]["width"] = sizes["width"]
    shape = (3, sizes["image_size"], sizes["image_size"])
    sequential, ensemble = measure(
        spec, sizes["ipc"], sizes["eval_runs"], shape, 10, sizes["ensemble_epochs"], 3, device
    )
    ratio = sequential / ensemble
    return {
        "value": ratio,
        "target": ">= 3",
        "ok": ratio >= 3,
        "detail": {"sequential_s_per_epoch": sequential, "ensemble_s_per_epoch": ensemble},
    }


def goal_5(device, sizes, work: Path) -> dict:
    """Cells per hour with 1, 2 and 4 concurrent processes on one device."""
    rates = {}
    shares = sizes["shares"]
    for share in shares:
        start = time.perf_counter()
        processes = [
            _fairbench(_cell_args(sizes, sizes["share_iterations"], 1, 1), work / f"share{share}-{k}", device)
            for k in range(share)
        ]
        for process in processes:
            _finish(process)
        rates[share] = 3600 * share / (time.perf_counter() - start)
    gain = rates[shares[-1]] / rates[1]
    return {
        "value": gain,
        "target": f">= 2.5 ({shares[-1]} cells)",
        "ok": gain >= 2.5,
        "detail": {"cells_per_hour": rates},
    }


def _launches(method: str, hp: dict, train, ipc: int, ctx: DistillContext) -> int:
    """Kernel launches of one DM iteration (the third of four): on a GPU the runtime's launch calls
    (a CUDA graph replay is one), on a CPU the top-level aten operations."""
    prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA] if ctx.device.type == "cuda" else None)
    context = DistillContext(device=ctx.device, make_net=ctx.make_net, progress=profile_iteration(prof, 2, ctx.device))
    build_distiller(method, {**hp, "iterations": 4}).distill(train, ipc, context)
    names = [e.name for e in prof.events()]
    if ctx.device.type == "cuda":
        return sum(n.startswith(("cudaLaunchKernel", "cudaGraphLaunch", "cuLaunchKernel")) for n in names)
    return sum(n.startswith("aten::") for n in names)


def goal_6(device, sizes) -> dict:
    """distill.compile (CUDA graphs on a GPU) against eager: the dm iteration's time and launches."""
    ipc = sizes["ipc"]
    train, ctx = _dm_setting(device, sizes)
    detail = {}
    for compile in (False, True):
        hp = {**_hparams("dm", sizes), "compile": compile}
        # a tenth of the loop is left out of iter_ms: the first iteration, which compiles
        timed = build_distiller("dm", {**hp, "iterations": max(10, sizes["loop_iterations"])})
        timed.distill(train, ipc, ctx)
        detail["compiled" if compile else "eager"] = {
            "iter_ms": timed.stats.iter_ms,
            "launches": _launches("dm", hp, train, ipc, ctx),
        }
    ratio = detail["eager"]["iter_ms"] / detail["compiled"]["iter_ms"]
    return {"value": ratio, "target": ">= 1 (compiled no slower)", "ok": ratio >= 1, "detail": detail}


def goal_7(device, sizes) -> dict:
    """The compiled step's launches against the eager step's, for the methods whose extra work
    (COBRA's warm start, wbary's Sinkhorn solves) distill.compile captures."""
    ipc = sizes["ipc"]
    train, ctx = _dm_setting(device, sizes)
    detail = {}
    for method in ("dm+cobra", "dm+wbary"):
        hp = _hparams(method, sizes)
        eager, compiled = (_launches(method, {**hp, "compile": c}, train, ipc, ctx) for c in (False, True))
        detail[method] = {"eager_launches": eager, "compiled_launches": compiled}
    worst = max(d["compiled_launches"] / d["eager_launches"] for d in detail.values())
    return {"value": worst, "target": "< 1 (compiled / eager launches)", "ok": worst < 1, "detail": detail}


LAUNCH_LIMITS = {"dm": 150, "dm+fairdd": 150, "dm+cobra": 600, "dm+wbary": 500}  # issue 20


def goal_8(device, sizes) -> dict:
    """Issue 20's limits on kernel launches per iteration, with distill.compile (CUDA graphs; DSA
    inside the embedding's graph), which ``benchmarks/op_counts.py --compile`` estimates from a
    CPU profile."""
    ipc = sizes["ipc"]
    train, ctx = _dm_setting(device, sizes)
    detail = {}
    for method, limit in LAUNCH_LIMITS.items():
        hp = {**_hparams(method, sizes), "compile": True}
        detail[method] = {"compiled_launches": _launches(method, hp, train, ipc, ctx), "limit": limit}
    worst = max(d["compiled_launches"] / d["limit"] for d in detail.values())
    return {"value": worst, "target": "<= 1 (launches / issue 20's limit)", "ok": worst <= 1, "detail": detail}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("device")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True, help="folder for the JSON report")
    args = parser.parse_args()
    device = torch.device(args.device)
    quick = args.quick
    sizes = QUICK if quick else FULL
    report = {"device": str(device), "quick": quick, "torch": torch.__version__, "goals": {}}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    with tempfile.TemporaryDirectory() as work:
        checks = {
            "1 dm vs per-class loop": lambda: goal_1(device, sizes),
            "2 cmnist-mini dm cell": lambda: goal_2(device, sizes, Path(work)),
            "3 dm+wbary over dm": lambda: goal_3(device, sizes),
            "4 ensemble vs sequential": lambda: goal_4(device, sizes),
            "5 cells sharing a gpu": lambda: goal_5(device, sizes, Path(work)),
            "6 distill.compile over eager": lambda: goal_6(device, sizes),
            "7 compiled launches, cobra and wbary": lambda: goal_7(device, sizes),
            "8 compiled launches, issue 20's limits": lambda: goal_8(device, sizes),
        }
        for name, check in checks.items():
            start = time.perf_counter()
            try:
                result = check()
                value = float(result["value"])
                # --quick judges that the check ran and measured; the targets are for full sizes
                ok = math.isfinite(value) and (quick or result["ok"])
            except Exception as error:  # a check that cannot run fails, the others still run
                result, value, ok = {"error": f"{type(error).__name__}: {error}"}, float("nan"), False
            result.update(seconds=time.perf_counter() - start, passed=ok)
            report["goals"][name] = result
            failed |= not ok
            target = result.get("target", "-")
            verdict = "PASS" if ok else "FAIL"
            why = result.get("error") or f"{value:.3g} (target {target}{', quick: not judged' if quick else ''})"
            print(f"{verdict} goal {name}: {why} [{result['seconds']:.0f} s]", flush=True)
            # after every goal: a run stopped by the time budget keeps what finished
            (out / "device_checks.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"report: {out / 'device_checks.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
