"""The ``fairbench`` command line.

    fairbench run [suite=NAME] [key=value ...] [--dry-run] [-m key=a,b,c ...]
    fairbench prepare [suite=NAME] [key=value ...]      (alias: experts DATASET ...)
    fairbench check-method ID [plugins=[...]] [distill.KEY=VALUE ...]
    fairbench bench overhead [key=value ...]
    fairbench list {suites,datasets,methods,evaluators} [plugins=[...]] [include_path=[...]]
    fairbench data NAME [key=value ...] [--json]
    fairbench --version
    fairbench regress BASELINE [key=value ...] [--allow-change] [--update] [--markdown FILE] [--json FILE]
    fairbench compare A B [--allow-change] [--markdown FILE] [--json FILE]
    fairbench leaderboard OUT | add BUNDLE [key=value ...] | render [--root DIR]
    fairbench show SYNSET -o grid.png [key=value ...]
    fairbench submit RUN_DIR -o BUNDLE [--meta META.yaml]
    fairbench verify BUNDLE [key=value ...] [--json FILE]

Bad input of any kind prints one ``fairbench: error: ...`` line and exits with code 2. A run in
which some cells failed (a diverging distillation) names them and exits with code 1.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys

from .core.errors import FairbenchError
from .core.version import __version__


def _run(args) -> int:
    from .report.reported import render_reported
    from .report.tables import render_report
    from .run.config import resolve_run_config
    from .run.driver import run_suite
    from .run.launchers import describe_resources
    from .run.plan import describe_plan, make_plan

    config = resolve_run_config(args.overrides, multirun=args.multirun)
    if args.dry_run:
        cells = make_plan(config)
        _check_data_if_present(config, cells)
        print(describe_plan(config, cells))
        resources = describe_resources(config)
        if resources:
            print(resources)
        return 0
    out, frame, failures = run_suite(config, log=_log)
    print(render_report(frame))
    reported = render_reported(frame, config["suite"])
    if reported:
        print("\n" + reported)
    _log(f"fairbench: plots: {', '.join(str(p) for p in _run_plots(out)) or 'none (no finished cell)'}")
    if failures:
        _log(
            f"fairbench: {len(failures)} cells failed (left out of the tables; a rerun into the same out= retries them):"
        )
        for failure in failures:
            _log(f"  {failure}")
        return 1
    return 0


def _check_data_if_present(config: dict, cells) -> None:
    """``--dry-run``: the checks that need the data (IPC against class sizes, IDC's factor), for
    every dataset whose files are at hand; the others are named."""
    from .core.errors import DataNotFoundError
    from .data import load_dataset
    from .run.plan import check_cells_data

    trains, absent = {}, []
    for name in config["datasets"]:
        params = next(c.dataset_params for c in cells if c.dataset == name)
        try:
            trains[name] = load_dataset(name, config["data_root"], params).train
        except DataNotFoundError:
            absent.append(name)
    check_cells_data(cells, trains)
    if absent:
        _log(
            f"fairbench: dry run: {', '.join(absent)} not in {config['data_root']}; "
            f"IPC and image-size checks for them wait for the data"
        )


def _run_plots(out) -> list:
    from .report.plots import write_run_plots
    from .run.results import read_records

    return write_run_plots(out, read_records(out, missing_ok=True))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _prepare(args) -> int:
    from .distill import BASES
    from .run.config import resolve_run_config
    from .run.preparation import has_prepare, prepare_run

    config = resolve_run_config(args.overrides)
    if getattr(args, "dataset", None):  # the `experts DATASET` alias: every base with a step
        config["datasets"] = [args.dataset]
        config["methods"] = [m for m in config["methods"] if has_prepare(m)] or [
            b for b in BASES.names() if has_prepare(b)
        ]
    done = prepare_run(config, log=_log)
    for line in done:
        print(line)
    if not done:
        print("nothing to prepare: no method of this run has a preparation step")
    return 0


def _check_method(args) -> int:
    from .core.device import check_device
    from .run.config import command_settings
    from .testing import check_method

    defaults = {"plugins": [], "include_path": [], "distill": {}, "device": "cpu", "ipc": 2, "seed": 0}
    settings = command_settings(
        "check-method", args.overrides, defaults, why_no_suite="it runs on its own tiny dataset"
    )
    check_device(settings["device"])
    report = check_method(
        args.method,
        overrides=settings["distill"],
        ipc=settings["ipc"],
        seed=settings["seed"],
        device=settings["device"] if settings["device"] != "auto" else "cpu",
    )
    print(report)
    return 0 if report.ok else 1


def _bench(args) -> int:
    from tabulate import tabulate

    from .run.bench import overhead_rows, resolve_bench_config

    rows = overhead_rows(resolve_bench_config(args.overrides), log=_log)
    print(tabulate(rows, headers="keys", floatfmt=".2f"))
    return 0


def _list(args) -> int:
    from tabulate import tabulate

    from .core.registry import entry
    from .data import dataset_names
    from .distill import describe, method_ids
    from .evaluation.evaluate import evaluator_names
    from .run.config import command_settings, load_suite, suite_names

    command_settings(
        "list", args.overrides, {"plugins": [], "include_path": []}, why_no_suite="it lists what is registered"
    )
    if args.what == "suites":
        rows = [(name, load_suite(name).get("description", "")) for name in suite_names()]
    elif args.what == "datasets":
        rows = [(name, entry("datasets", name).get("description", "")) for name in dataset_names()]
    elif args.what == "methods":
        from .run.plan import provenance_label

        rows = [(m, describe(m), provenance_label(m)) for m in method_ids()]
    else:
        rows = [
            (name, entry("evaluators", name.partition(":")[0]).get("description", "")) for name in evaluator_names()
        ]
    print(tabulate(rows, headers=[args.what[:-1], "description", "provenance"][: len(rows[0]) if rows else 2]))
    return 0


def _data(args) -> int:
    from .data import load_dataset
    from .data.card import card_json, card_text
    from .run.config import data_settings

    data_root, download, params = data_settings("data", args.overrides)
    splits = load_dataset(args.name, data_root, params, download=download)
    print(card_json(splits) if args.json else card_text(splits))
    return 0


def _leaderboard(args) -> int:
    action, rest = args.overrides[0], args.overrides[1:]
    if action == "add" and rest:
        return _leaderboard_add(rest[0], rest[1:], args.root)
    if action == "render" and not rest:
        from .board.render import render_leaderboard

        written = render_leaderboard(args.root)
        print("\n".join(str(path) for path in written))
        return 0
    if rest:
        raise FairbenchError(
            "write fairbench leaderboard OUT, leaderboard add BUNDLE [key=value ...] or leaderboard render"
        )
    from .report.tables import render_report, write_leaderboard
    from .run.results import read_records

    print(render_report(write_leaderboard(action, read_records(action))))
    return 0


def _leaderboard_add(bundle: str, overrides: list[str], root: str) -> int:
    from .board.entries import add_bundle
    from .board.verify import Verifier, render_verification, verify_settings

    verification, written = add_bundle(bundle, root, Verifier(verify_settings(overrides)))
    print(render_verification(verification))
    print("\n".join(f"entry: {path}" for path in written))
    return 0 if verification["verified"] else 1


def _show(args) -> int:
    from .report.show import show_synset
    from .run.config import data_settings

    print(
        "\n".join(str(path) for path in show_synset(args.synset, args.output, *data_settings("show", args.overrides)))
    )
    return 0


def _submit(args) -> int:
    from .board.submit import submit

    print(f"bundle: {submit(args.run_dir, args.output, args.meta)}")
    return 0


def _verify(args) -> int:
    import json

    from .board.verify import Verifier, render_verification, verify_settings
    from .core.atomic import write_text_atomic

    result = Verifier(verify_settings(args.overrides)).verify(args.bundle)
    print(render_verification(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return 0 if result["verified"] else 1


def _regress(args) -> int:
    from .regress.rerun import regress_command

    return regress_command(
        args.baseline,
        args.overrides,
        update=args.update,
        markdown=args.markdown,
        json_path=args.json,
        log=_log,
        **_verdict_options(args),
    )


def _compare(args) -> int:
    from .regress.verdicts import compare_folders, publish

    comparison = compare_folders(args.a, args.b, **_verdict_options(args))
    return publish(comparison, f"fairbench compare {args.a} {args.b}", args.markdown, args.json)


def _verdict_options(args) -> dict:
    return {"allow_change": args.allow_change, "alpha": args.alpha, "min_effect": args.min_effect}


def _add_verdict_options(parser: argparse.ArgumentParser) -> None:
    from .regress.verdicts import ALPHA

    parser.add_argument(
        "--allow-change",
        action="store_true",
        help="pass where a deterministic rerun on the same machine differs (still fail on 'worse')",
    )
    parser.add_argument(
        "--alpha", type=float, default=ALPHA, help=f"level of the one-sided Welch test (default {ALPHA})"
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=None,
        metavar="POINTS",
        help="one minimum effect for every metric (default: 10 points for means, 20 for max/min)",
    )
    parser.add_argument(
        "--markdown", metavar="FILE", help="also write the table as Markdown (e.g. $GITHUB_STEP_SUMMARY)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every verdict as JSON")


class _Parser(argparse.ArgumentParser):
    """Every usage error, of the top command or a sub-command, reads ``fairbench: error: ...``."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"fairbench: error: {message}\n")


def _keys_help(title: str, rows) -> str:
    """A ``--help`` epilog listing settings with their defaults."""
    width = max(len(k) for k, _, _ in rows)
    lines = [f"  {k:<{width}}  {text} (default: {_shown(d)})" for k, d, text in rows]
    return f"{title}:\n" + "\n".join(lines)


def _shown(value) -> str:
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    if value is None:
        return "none"
    if value in ({}, ""):
        return "{}" if value == {} else '""'
    return str(value).lower() if isinstance(value, bool) else str(value)


def _add_run(commands, run_keys: str, formatter) -> None:
    run = commands.add_parser(
        "run",
        help="run a suite (default: quickstart) and print its leaderboard",
        epilog=run_keys,
        formatter_class=formatter,
    )
    run.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="suite=NAME and settings such as ipc=[10,50] methods=[dm,dm+cobra] device=cuda",
    )
    run.add_argument("--dry-run", action="store_true", help="check everything, print the plan of cells and exit")
    run.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        help="sweep: key=a,b,c or key=range(a,b,step) runs the product of the lists, one protocol each",
    )
    run.set_defaults(handler=_run)


def _add_prepare(commands, run_keys: str, formatter) -> None:
    prepare = commands.add_parser(
        "prepare",
        help="run the preparation steps a run's cells need (MTT's experts)",
        epilog=run_keys,
        formatter_class=formatter,
    )
    prepare.add_argument("overrides", nargs="*", metavar="key=value", help="the run's settings, as for run")
    prepare.set_defaults(handler=_prepare)


def _add_experts(commands) -> None:
    experts = commands.add_parser("experts", help="alias of prepare for one dataset's MTT expert trajectories")
    experts.add_argument("dataset", help="the dataset to train experts on, e.g. cmnist-mini")
    experts.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="the run's settings: suite=NAME, methods=[mtt,mtt+fairdd], distill.num_experts=5, ...",
    )
    experts.set_defaults(handler=_prepare)


def _add_check_method(commands) -> None:
    check = commands.add_parser(
        "check-method",
        help="check a method's contract on a tiny dataset, on the CPU",
        description="Exit 0 when every clause passes, 1 naming each failed clause.",
    )
    check.add_argument("method", help="a method id, base or base+variant (fairbench list methods)")
    check.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="plugins=[...] include_path=[...] distill.KEY=VALUE ipc=2 seed=0",
    )
    check.set_defaults(handler=_check_method)


def _add_bench(commands, formatter) -> None:
    from .run.bench import BENCH_SETTINGS

    bench = commands.add_parser(
        "bench",
        help="measure the cost of fairness: every variant's iteration time over its base's",
        epilog=_keys_help("settings (key=value)", [(k, d, t) for k, (d, _, t) in BENCH_SETTINGS.items()]),
        formatter_class=formatter,
    )
    bench.add_argument("what", choices=["overhead"])
    bench.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="device=cuda ipc=[10,50] groups=[2,10] methods=[dm+wbary] width=32 distill.real_batch=64 ...",
    )
    bench.set_defaults(handler=_bench)


def _add_list(commands) -> None:
    listing = commands.add_parser("list", help="list suites, datasets, methods or evaluators")
    listing.add_argument("what", choices=["suites", "datasets", "methods", "evaluators"])
    listing.add_argument("overrides", nargs="*", metavar="key=value", help="plugins=[...] include_path=[...]")
    listing.set_defaults(handler=_list)


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="print a dataset's card: its samples per (class, group) cell in each split")
    data.add_argument("name", help="a dataset name (fairbench list datasets)")
    data.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="data_root=DIR, download=true, plugins=[...], and dataset parameters such as rho=0.95",
    )
    data.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    data.set_defaults(handler=_data)


def _add_submit(commands) -> None:
    submit = commands.add_parser("submit", help="bundle a run's synthetic sets and claimed metrics for the leaderboard")
    submit.add_argument("run_dir", help="the out folder of a run (holds results.jsonl and synsets/)")
    submit.add_argument(
        "-o", "--output", required=True, help="the bundle to write: a new folder, or a file ending in .zip"
    )
    submit.add_argument("--meta", help="YAML with the submission's name, paper, code, authors, notes")
    submit.set_defaults(handler=_submit)


def _add_verify(commands) -> None:
    verify = commands.add_parser(
        "verify", help="re-evaluate a bundle with fresh seeds and check it (exit 0 verified, 1 not)"
    )
    verify.add_argument("bundle", help="a bundle folder or .zip made by fairbench submit")
    verify.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="device=cuda data_root=DIR num_eval=5 seed=N metrics=[acc,deo_mean] z=3 floor=2.0 ...",
    )
    verify.add_argument("--json", help="also write the whole verification as JSON to this file")
    verify.set_defaults(handler=_verify)


def _add_leaderboard(commands) -> None:
    board = commands.add_parser(
        "leaderboard",
        help="re-render a run folder's tables (OUT), add a verified bundle "
        "(add BUNDLE), or render the leaderboard's pages (render)",
    )
    board.add_argument(
        "overrides",
        nargs="+",
        metavar="OUT | add BUNDLE [key=value ...] | render",
        help="a run's out folder; or add BUNDLE with verify's settings; or render",
    )
    board.add_argument(
        "--root", default="leaderboard", help="the leaderboard folder (holds entries/); default leaderboard"
    )
    board.set_defaults(handler=_leaderboard)


def _add_regress(commands) -> None:
    regress = commands.add_parser(
        "regress", help="rerun a baseline's recorded protocol and fail (exit 1) where it got worse"
    )
    regress.add_argument("baseline", help="a run folder (results.jsonl) or a folder of leaderboard entries")
    regress.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="settings on top of the recorded ones, e.g. out=DIR device=cuda",
    )
    regress.add_argument(
        "--update", action="store_true", help="rewrite the baseline from the rerun and say what changed"
    )
    _add_verdict_options(regress)
    regress.set_defaults(handler=_regress)


def _add_compare(commands) -> None:
    compare = commands.add_parser("compare", help="compare run folder B with run folder A cell by cell, nothing rerun")
    compare.add_argument("a", help="the reference run folder")
    compare.add_argument("b", help="the run folder judged against it")
    _add_verdict_options(compare)
    compare.set_defaults(handler=_compare)


def _add_show(commands) -> None:
    show = commands.add_parser("show", help="draw a synthetic set as an image grid, one row per class")
    show.add_argument("synset", help="a synthetic set (.safetensors), e.g. OUT/synsets/<id>.safetensors")
    show.add_argument("-o", "--output", required=True, help="the image to write (PNG; an SVG is written beside it)")
    show.add_argument("overrides", nargs="*", metavar="key=value", help="data_root=DIR, download=true")
    show.set_defaults(handler=_show)


def build_parser() -> argparse.ArgumentParser:
    """The fairbench command, one sub-command per ``_add_*`` function."""
    from .run.config import RUN_KEYS

    parser = _Parser(prog="fairbench", description="Benchmark suite for fair dataset distillation.")
    parser.add_argument("--version", action="version", version=f"fairbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run_keys = _keys_help(
        "run keys (key=value; nested keys dotted, values YAML)",
        [("suite", "quickstart", "a suite name (fairbench list suites) or a .yaml path")]
        + [(k, d, t) for k, (d, t) in RUN_KEYS.items()],
    )
    formatter = argparse.RawDescriptionHelpFormatter
    _add_run(commands, run_keys, formatter)
    _add_prepare(commands, run_keys, formatter)
    _add_experts(commands)
    _add_check_method(commands)
    _add_bench(commands, formatter)
    _add_list(commands)
    _add_data(commands)
    _add_submit(commands)
    _add_verify(commands)
    _add_leaderboard(commands)
    _add_regress(commands)
    _add_compare(commands)
    _add_show(commands)
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
    return (
        f"fairbench: interrupted; every finished cell is kept in {out}/results.jsonl. Resume (finished "
        f"cells are skipped) with:\n  {resume}"
    )


if __name__ == "__main__":
    sys.exit(main())
