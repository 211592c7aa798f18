"""The ``fairbench`` command line.

    fairbench run [suite=NAME] [key=value ...] [--dry-run]
    fairbench experts DATASET [suite=NAME] [key=value ...]
    fairbench bench overhead [key=value ...]
    fairbench list {suites,datasets,methods,evaluators}
    fairbench data NAME [key=value ...] [--json]
    fairbench leaderboard OUT

Bad input of any kind prints one ``fairbench: error: ...`` line and exits with code 2. A run in
which some cells failed (a diverging distillation) names them and exits with code 1.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys

from .errors import FairbenchError


def _run(args) -> int:
    from .config import resolve_run_config
    from .harness import run_suite
    from .leaderboard import render_report
    from .plan import describe_plan, make_plan

    config = resolve_run_config(args.overrides)
    if args.dry_run:
        print(describe_plan(config, make_plan(config)))
        return 0
    out, frame, failures = run_suite(config, log=_log)
    print(render_report(frame))
    if failures:
        _log(f"fairbench: {len(failures)} cells failed (recorded with status 'failed', left out of the tables):")
        for failure in failures:
            _log(f"  {failure}")
        return 1
    return 0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _experts(args) -> int:
    from .config import resolve_run_config
    from .harness import make_experts_for

    config = resolve_run_config(args.overrides)
    config["datasets"] = [args.dataset]
    mtt = [m for m in config["methods"] if m.partition("+")[0] == "mtt"]
    config["methods"] = mtt or ["mtt"]
    for folder, made in make_experts_for(config, log=_log):
        print(f"{folder}: {made} trained, the rest reused")
    return 0


def _bench(args) -> int:
    from tabulate import tabulate

    from .bench import overhead_rows, resolve_bench_config

    rows = overhead_rows(resolve_bench_config(args.overrides), log=_log)
    print(tabulate(rows, headers="keys", floatfmt=".2f"))
    return 0


def _list(args) -> int:
    from tabulate import tabulate

    from .config import load_suite, suite_names
    from .data import dataset_names
    from .distill import describe, method_ids
    from .evaluate import evaluator_names
    from .registry import entry

    if args.what == "suites":
        rows = [(name, load_suite(name).get("description", "")) for name in suite_names()]
    elif args.what == "datasets":
        rows = [(name, entry("datasets", name).get("description", "")) for name in dataset_names()]
    elif args.what == "methods":
        rows = [(m, describe(m)) for m in method_ids()]
    else:
        rows = [(name, entry("evaluators", name.partition(":")[0]).get("description", ""))
                for name in evaluator_names()]
    print(tabulate(rows, headers=[args.what[:-1], "description"]))
    return 0


def _data(args) -> int:
    from .config import RUN_DEFAULTS
    from .data import load_dataset
    from .data.card import card_json, card_text, parse_settings

    data_root, download, params = parse_settings(args.overrides, RUN_DEFAULTS["data_root"])
    splits = load_dataset(args.name, data_root, params, download=download)
    print(card_json(splits) if args.json else card_text(splits))
    return 0


def _leaderboard(args) -> int:
    from .leaderboard import render_report, write_leaderboard
    from .results import read_records

    print(render_report(write_leaderboard(args.out, read_records(args.out))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairbench", description="Benchmark suite for fair dataset distillation.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a suite (default: quickstart) and print its leaderboard")
    run.add_argument("overrides", nargs="*", metavar="key=value",
                     help="suite=NAME and settings such as ipc=[10,50] methods=[dm,dm+cobra] device=cuda")
    run.add_argument("--dry-run", action="store_true", help="print the plan of cells and exit")
    run.set_defaults(handler=_run)

    experts = commands.add_parser("experts", help="train and cache the expert trajectories MTT cells need")
    experts.add_argument("dataset", help="the dataset to train experts on, e.g. cmnist-mini")
    experts.add_argument("overrides", nargs="*", metavar="key=value",
                         help="the run's settings: suite=NAME, methods=[mtt,mtt+fairdd], distill.num_experts=5, ...")
    experts.set_defaults(handler=_experts)

    bench = commands.add_parser("bench", help="measure the cost of fairness: every variant's iteration time over its base's")
    bench.add_argument("what", choices=["overhead"])
    bench.add_argument("overrides", nargs="*", metavar="key=value",
                       help="device=cuda ipc=[10,50] groups=[2,10] methods=[dm+wbary] width=32 distill.real_batch=64 ...")
    bench.set_defaults(handler=_bench)

    listing = commands.add_parser("list", help="list suites, datasets, methods or evaluators")
    listing.add_argument("what", choices=["suites", "datasets", "methods", "evaluators"])
    listing.set_defaults(handler=_list)

    data = commands.add_parser("data", help="print a dataset's card: its samples per (class, group) cell in each split")
    data.add_argument("name", help="a dataset name (fairbench list datasets)")
    data.add_argument("overrides", nargs="*", metavar="key=value",
                      help="data_root=DIR, download=true, and dataset parameters such as rho=0.95 or target=Blond_Hair")
    data.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    data.set_defaults(handler=_data)

    board = commands.add_parser("leaderboard", help="re-render the tables of a run folder from its records")
    board.add_argument("out", help="the out folder of a run (holds results.jsonl)")
    board.set_defaults(handler=_leaderboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Overrides and options may interleave (``run suite=ci --dry-run ipc=[10]``): argparse stops
    # the positional list at the first option, so the rest comes back as extras.
    args, extras = parser.parse_known_args(argv)
    stray = [e for e in extras if e.startswith("-") or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extras:
        args.overrides += extras
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.handler(args)
    except FairbenchError as error:
        print(f"fairbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(_interrupted(interrupt, argv if argv is not None else sys.argv[1:]), file=sys.stderr)
        return 130


def _interrupt(signum, frame):
    """SIGTERM (a scheduler's or ``kill``'s stop) ends a run the way Ctrl-C does."""
    raise KeyboardInterrupt


def _interrupted(interrupt: KeyboardInterrupt, argv: list[str]) -> str:
    """The interrupt message: what is kept and, for a run, the exact command that resumes it."""
    out = getattr(interrupt, "out", None)
    if out is None:
        return "fairbench: interrupted"
    resume = shlex.join(["fairbench", *[a for a in argv if not a.startswith("out=")], f"out={out}"])
    return (f"fairbench: interrupted; every finished cell is kept in {out}/results.jsonl. Resume (finished "
            f"cells are skipped) with:\n  {resume}")


if __name__ == "__main__":
    sys.exit(main())
