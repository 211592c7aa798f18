"""Every bad setting is refused before anything runs, by --dry-run as by the run: one line, exit 2.

In-process calls of ``fairbench.cli.main`` (no interpreter start per case)."""

import pytest

from fairbench import __version__
from fairbench.cli import main
from fairbench.core.paths import data_home


def run_main(capsys, *args):
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert len(lines) == 1 and lines[0].startswith("fairbench: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["device=mps"], ["device=mps", "no MPS device"]),
        (["device=xla"], ["device 'xla' is not supported", "cpu, cuda"]),
        (["device=meta"], ["device 'meta' is not supported"]),
        (["device=tpu"], ["unknown device 'tpu'", "cuda:N"]),
        (["distill.iterations=-5"], ["iterations=-5 is invalid", "at least 1"]),
        (["distill.iterations=0"], ["iterations=0 is invalid"]),
        (["eval.epochs=-3"], ["eval.epochs=-3 is invalid", "positive"]),
        (["eval.epochs=0"], ["eval.epochs=0 is invalid"]),
        (["seeds=[0,0]"], ["seeds lists 0 more than once"]),
        (["ipc=[10,10]"], ["ipc lists 10 more than once"]),
        (["methods=[dm,dm]"], ["methods lists dm more than once"]),
        (["dataset.rho=0"], ["rho must lie in (0, 1], got 0.0"]),
        (["dataset.test_fraction=1.5"], ["test_fraction must lie in (0, 1), got 1.5"]),
        (["distill.distance=l2"], ["distance='l2' is invalid", "mse, l1"]),
        (["methods=[dsa]", "distill.dsa_strategy=foo"], ["dsa_strategy='foo' is invalid", "color, crop"]),
        (
            ["methods=[dc]", "ipc=[100]"],
            ["'dc' has no settings for ipc=100", "1, 10, 20, 30, 40, 50", "distill.outer_loop and distill.inner_loop"],
        ),
        (["methods=[idc]", "distill.factor=3"], ["factor=3 must be a positive divisor of the image size 32x32"]),
        (["methods=[random]", "ipc=[401]"], ["ipc=401 is impossible", "only 400 training images"]),
        (
            ["methods=[mtt]", "distill.expert_epochs=60"],
            ["expert_epochs=60 is beyond the experts' trajectory_epochs=50"],
        ),
        (
            ["plugins=[no_such_plugin_module]"],
            ["plugin 'no_such_plugin_module' failed to import", "ModuleNotFoundError"],
        ),
        (["plugins=5"], ["plugins takes a list"]),
        (["include_path=[/no/such/folder]"], ["include_path folder not found"]),
    ],
)
def test_dry_run_refuses_bad_values(capsys, args, fragments):
    assert_one_line_error(*run_main(capsys, "run", "--dry-run", *args)[::2], *fragments)


def test_idc_needs_factor_squared_real_images_per_stored_image():
    from fairbench.core.errors import FairbenchError
    from fairbench.distill import build_distiller, method_hparams
    from fairbench.testing import tiny_splits

    train, _ = tiny_splits()  # 24 images per class, 8x8
    idc = build_distiller("idc", method_hparams("idc", "", 6))
    idc.check_data(train, 6)  # 6 x 2^2 = 24: just enough
    with pytest.raises(FairbenchError, match="ipc=7 is impossible for idc: it starts from 28 real images"):
        idc.check_data(train, 7)


def test_ipc_missing_from_the_table_runs_when_its_loops_are_given(capsys):
    code, out, err = run_main(
        capsys, "run", "--dry-run", "methods=[dc]", "ipc=[100]", "distill.outer_loop=2", "distill.dc.inner_loop=3"
    )
    assert code == 0, err
    assert "dc" in out


@pytest.mark.parametrize(
    "content,fragments",
    [
        (b"", ["suite file is empty"]),
        (b"suite: ci\nipc: [10]\n", ["cannot name another suite"]),
        (b"ipc: [10\nmethods: [dm]\n", [":2:8: not valid YAML", "expected ',' or ']'"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ["not a text file"]),
        (b"- ipc\n- methods\n", ["a suite must be a mapping of run keys, not list"]),
    ],
)
def test_a_bad_suite_file_is_named(capsys, tmp_path, content, fragments):
    path = tmp_path / "suite.yaml"
    path.write_bytes(content)
    assert_one_line_error(*run_main(capsys, "run", "--dry-run", f"suite={path}")[::2], str(path), *fragments)


def test_a_missing_suite_file_is_not_an_unknown_suite(capsys, tmp_path):
    code, _, err = run_main(capsys, "run", "--dry-run", f"suite={tmp_path / 'nope.yaml'}")
    assert_one_line_error(code, err, "suite file not found", "nope.yaml")
    assert "unknown suite" not in err


@pytest.mark.parametrize(
    "setting,fragment",
    [
        ("iterations=0", "iterations=0 is invalid"),
        ("repeats=0", "repeats=0 is invalid"),
        ("ipc=[0]", "ipc=0 is invalid"),
        ("groups=[0]", "groups=0 is invalid"),
        ("classes=0", "classes=0 is invalid"),
        ("iterations=abc", "iterations='abc' has the wrong type"),
        ("width=-1", "width=-1 is invalid"),
        ("warmup=-1", "warmup=-1 is invalid"),
        ("ipc=[10,10]", "ipc lists a value more than once"),
        ("device=meta", "device 'meta' is not supported"),
    ],
)
def test_bench_overhead_refuses_bad_settings_before_timing(capsys, setting, fragment):
    assert_one_line_error(*run_main(capsys, "bench", "overhead", setting)[::2], fragment)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["list", "bogus"], "invalid choice: 'bogus'"),
        (["bench", "nothing"], "invalid choice: 'nothing'"),
        (["check-method"], "the following arguments are required: method"),
        (["data"], "the following arguments are required: name"),
        ([], "the following arguments are required: command"),
    ],
)
def test_usage_errors_of_sub_commands_read_like_every_other_error(capsys, args, fragment):
    assert_one_line_error(*run_main(capsys, *args)[::2], fragment)


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip() == f"fairbench {__version__}"


def test_run_help_lists_every_run_key_with_its_default(capsys):
    from fairbench.run.config import RUN_KEYS

    code, out, _ = run_main(capsys, "run", "--help")
    assert code == 0
    keys = {line.split()[0] for line in out.split("run keys")[1].splitlines()[1:] if line.strip()}
    assert keys == set(RUN_KEYS) | {"suite"}
    assert "methods     method ids" in out.replace("  ", " ") or "default: [random,dm,dm+fairdd,dm+cobra]" in out
    assert "(default: auto)" in out and "(default: quickstart)" in out


def test_bench_help_lists_its_settings(capsys):
    code, out, _ = run_main(capsys, "bench", "--help")
    assert code == 0
    for setting in ("iterations", "repeats", "classes", "width", "per_class", "image_size", "groups"):
        assert f"\n  {setting} " in out
    assert "(default: 3)" in out and "(default: [2,10])" in out


def test_the_registry_and_suites_are_found_in_the_checkout():
    home = data_home()
    assert (home / "registry" / "methods" / "dm.yaml").is_file() and (home / "suites" / "quickstart.yaml").is_file()


def test_the_plan_names_every_setting_cut_from_the_registry_protocol(capsys):
    """`datasets=[cmnist]` without `suite=` inherits quickstart's cut budgets: the dry run says so,
    and shows each cell's full resolved protocol."""
    from fairbench.cli import main

    assert main(["run", "datasets=[cmnist]", "methods=[dm]", "data_root=/nonexistent", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "suite quickstart: 1 cells" in out
    assert "evaluator convnet.model.width=32 (registry: 128)" in out
    assert "distill dm.real_batch=64 (registry: 256)" in out
    assert "resolved protocols:" in out and "cmnist ipc=10 dm seed=0 x convnet: protocol" in out


def test_a_run_at_the_registry_protocol_says_so(capsys):
    from fairbench.cli import main
    from fairbench.run.config import resolve_run_config
    from fairbench.run.plan import make_plan, protocol_deviations

    config = resolve_run_config(["suite=cmnist", "methods=[dm]", "ipc=[10]"])
    assert protocol_deviations(config, make_plan(config)) == []
    assert main(["run", "suite=cmnist", "methods=[dm]", "ipc=[10]", "data_root=/nonexistent", "--dry-run"]) == 0
    assert "the registry's protocol, unchanged" in capsys.readouterr().out
