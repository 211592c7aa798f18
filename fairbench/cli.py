"""The ``fairbench`` command line.

    fairbench run [suite=NAME] [key=value ...] [--dry-run]
    fairbench experts DATASET [suite=NAME] [key=value ...]
    fairbench bench overhead [key=value ...]
    fairbench list {suites,datasets,methods,evaluators}
    fairbench data NAME [key=value ...] [--json]
    fairbench leaderboard OUT | add BUNDLE [key=value ...] | render [--root DIR]
    fairbench show SYNSET -o grid.png [key=value ...]
    fairbench submit RUN_DIR -o BUNDLE [--meta META.yaml]
    fairbench verify BUNDLE [key=value ...] [--json FILE]

Bad input of any kind prints one ``fairbench: error: ...`` line and exits with code 2. A run in
which some cells failed (a diverging distillation) names them and exits with code 1.
"""

from __future__ import annotations

import argparse
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
    _run_plots(out)
    print(f"\nresults: {out}/results.jsonl  tables: {out}/leaderboard.csv, {out}/leaderboard.md, "
          f"{out}/leaderboard_across_evaluators.csv  plots: {out}/plots/")
    if failures:
        _log(f"fairbench: {len(failures)} cells failed (recorded with status 'failed', left out of the tables):")
        for failure in failures:
            _log(f"  {failure}")
        return 1
    return 0


def _run_plots(out) -> None:
    from .plots import write_run_plots
    from .results import read_records

    write_run_plots(out, read_records(out, missing_ok=True))


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
    action, rest = args.overrides[0], args.overrides[1:]
    if action == "add" and rest:
        return _leaderboard_add(rest[0], rest[1:], args.root)
    if action == "render" and not rest:
        from .render import render_leaderboard

        written = render_leaderboard(args.root)
        print("\n".join(str(path) for path in written))
        return 0
    if rest:
        raise FairbenchError("write fairbench leaderboard OUT, leaderboard add BUNDLE [key=value ...] "
                             "or leaderboard render")
    from .leaderboard import render_report, write_leaderboard
    from .results import read_records

    print(render_report(write_leaderboard(action, read_records(action))))
    return 0


def _leaderboard_add(bundle: str, overrides: list[str], root: str) -> int:
    from .entries import add_bundle
    from .verify import Verifier, render_verification, verify_settings

    verification, written = add_bundle(bundle, root, Verifier(verify_settings(overrides)))
    print(render_verification(verification))
    print("\n".join(f"entry: {path}" for path in written))
    return 0 if verification["verified"] else 1


def _show(args) -> int:
    from .show import show_synset

    print("\n".join(str(path) for path in show_synset(args.synset, args.output, args.overrides)))
    return 0


def _submit(args) -> int:
    from .submit import submit

    print(f"bundle: {submit(args.run_dir, args.output, args.meta)}")
    return 0


def _verify(args) -> int:
    import json

    from .atomic import write_text_atomic
    from .verify import Verifier, render_verification, verify_settings

    result = Verifier(verify_settings(args.overrides)).verify(args.bundle)
    print(render_verification(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return 0 if result["verified"] else 1


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

    submit = commands.add_parser("submit", help="bundle a run's synthetic sets and claimed metrics for the leaderboard")
    submit.add_argument("run_dir", help="the out folder of a run (holds results.jsonl and synsets/)")
    submit.add_argument("-o", "--output", required=True, help="the bundle to write: a new folder, or a file ending in .zip")
    submit.add_argument("--meta", help="YAML with the submission's name, paper, code, authors, notes")
    submit.set_defaults(handler=_submit)

    verify = commands.add_parser("verify", help="re-evaluate a bundle with fresh seeds and check it (exit 0 verified, 1 not)")
    verify.add_argument("bundle", help="a bundle folder or .zip made by fairbench submit")
    verify.add_argument("overrides", nargs="*", metavar="key=value",
                        help="device=cuda data_root=DIR num_eval=5 seed=N metrics=[acc,deo_mean] z=3 floor=2.0 ...")
    verify.add_argument("--json", help="also write the whole verification as JSON to this file")
    verify.set_defaults(handler=_verify)

    board = commands.add_parser("leaderboard", help="re-render a run folder's tables (OUT), add a verified bundle "
                                                   "(add BUNDLE), or render the leaderboard's pages (render)")
    board.add_argument("overrides", nargs="+", metavar="OUT | add BUNDLE [key=value ...] | render",
                       help="a run's out folder; or add BUNDLE with verify's settings; or render")
    board.add_argument("--root", default="leaderboard", help="the leaderboard folder (holds entries/); default leaderboard")
    board.set_defaults(handler=_leaderboard)

    show = commands.add_parser("show", help="draw a synthetic set as an image grid, one row per class")
    show.add_argument("synset", help="a synthetic set (.safetensors), e.g. OUT/synsets/<id>.safetensors")
    show.add_argument("-o", "--output", required=True, help="the image to write (PNG; an SVG is written beside it)")
    show.add_argument("overrides", nargs="*", metavar="key=value", help="data_root=DIR, download=true")
    show.set_defaults(handler=_show)
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
    try:
        return args.handler(args)
    except FairbenchError as error:
        print(f"fairbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fairbench: interrupted; every finished cell is kept in results.jsonl", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
