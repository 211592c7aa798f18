import pytest
from native_files import write_mnist


def assert_clean_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("fairbench: error:"), proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["suite=nope"], ["unknown suite 'nope'", "quickstart"]),
        (["datasets=[nope]"], ["unknown dataset 'nope'", "cmnist-mini"]),
        (["methods=[dm+nope]"], ["unknown method 'dm+nope'", "dm+fairdd"]),
        (["methods=[mtt+wbary]"], ["unknown method 'mtt+wbary'", "dm+wbary", "cafe+wbary", "mtt+cobra"]),
        (["evaluators=[nope]"], ["unknown evaluator 'nope'", "convnet", "timm:<model>"]),
        (["evaluators=[convnet,timm:resnet1800]"], ["unknown timm model 'resnet1800'", "resnet18"]),
        (
            ["evaluators=[resnet18]", "models.resnet18.widht=8"],
            ["evaluator 'resnet18' (models.resnet18) has no setting widht", "width"],
        ),
        (["ensemble=maybe"], ["ensemble takes auto, true or false"]),
        (["ipc=0"], ["ipc must be at least 1"]),
        (["ipc=[10,"], ["malformed override"]),
        (["ipc"], ["malformed override 'ipc'"]),
        (["distill.iteratons=5"], ["no method has a setting iteratons", "iterations"]),
        (["distill.iterations=ten"], ["wrong type"]),
        (["dataset.bogus=1"], ["no dataset has a setting bogus", "rho"]),
        (["eval.epoch=3"], ["no setting epoch", "epochs"]),
        (["distill.dm+cobra.warmup_epoch=1"], ["method 'dm+cobra' has no setting warmup_epoch"]),
        (["num_eval=0"], ["num_eval must be a positive integer"]),
        (["colour=red"], ["unknown run key 'colour'", "methods"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fairbench_cli, args, fragments):
    assert_clean_error(fairbench_cli("run", "--dry-run", *args), *fragments)


def test_missing_data_says_where_files_go_and_keeps_results(fairbench_cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text('{"kept": true}\n')
    proc = fairbench_cli("run", "suite=cmnist", f"data_root={tmp_path / 'empty'}", f"out={out}")
    assert_clean_error(proc, str(tmp_path / "empty" / "MNIST" / "raw"), "https://")
    assert (out / "results.jsonl").read_text() == '{"kept": true}\n'


def test_impossible_ipc_is_refused(fairbench_cli, tmp_path):
    write_mnist(tmp_path, per_class_train=4, per_class_test=2)
    proc = fairbench_cli(
        "run",
        "suite=ci",
        "datasets=[cmnist]",
        f"data_root={tmp_path}",
        "ipc=[5]",
        "methods=[random]",
        f"out={tmp_path / 'out'}",
    )
    assert_clean_error(proc, "ipc=5 is impossible")


def test_an_evaluator_that_cannot_take_the_images_fails_before_distilling(fairbench_cli, tmp_path):
    proc = fairbench_cli(
        "run", "suite=ci", "methods=[dm]", "evaluators=[convnet,timm:inception_v3]", f"out={tmp_path / 'out'}"
    )
    assert_clean_error(proc, "evaluator 'timm:inception_v3' cannot take 3x32x32 images")
    assert not (tmp_path / "out").exists()


def test_dry_run_needs_no_data(fairbench_cli, tmp_path):
    proc = fairbench_cli(
        "run", "suite=cmnist", "--dry-run", f"data_root={tmp_path / 'empty'}", "ipc=[10,50]", "methods=[dm,dm+cobra]"
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 cells" in proc.stdout and "20000" in proc.stdout and "dm+cobra" in proc.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "what,expected",
    [("suites", "quickstart"), ("datasets", "cmnist-mini"), ("methods", "dm+cobra"), ("evaluators", "convnet")],
)
def test_list(fairbench_cli, what, expected):
    proc = fairbench_cli("list", what)
    assert proc.returncode == 0 and expected in proc.stdout


def test_list_methods_prints_every_valid_id(fairbench_cli):
    from fairbench.distill import method_ids

    listed = [line.split()[0] for line in fairbench_cli("list", "methods").stdout.splitlines()[2:]]
    assert listed == method_ids()
    assert {"dc+cobra", "dsa+fairdd", "idc+cobra", "cafe+wbary", "mtt+fairdd", "dm+wbary"} <= set(listed)
    assert "mtt+wbary" not in listed and "dc+wbary" not in listed


def test_experts_refuses_an_unknown_dataset(fairbench_cli):
    assert_clean_error(fairbench_cli("experts", "nope"), "unknown dataset 'nope'")


def test_bench_overhead_prints_each_variant_over_its_base(fairbench_cli):
    proc = fairbench_cli(
        "bench",
        "overhead",
        "device=cpu",
        "ipc=[1]",
        "groups=[2]",
        "methods=[dm+wbary,mtt+fairdd]",
        "iterations=1",
        "warmup=0",
        "repeats=1",
        "classes=2",
        "per_class=8",
        "image_size=8",
        "width=4",
        "distill.real_batch=4",
        "distill.syn_steps=1",
        "distill.num_experts=1",
        "distill.trajectory_epochs=2",
        "distill.max_start_epoch=0",
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[2]: line.split() for line in proc.stdout.splitlines()[2:]}
    assert set(rows) == {"dm", "dm+wbary", "mtt", "mtt+fairdd"}
    assert float(rows["dm"][5]) == 1.0 and float(rows["dm+wbary"][5]) > 0


def test_bench_overhead_refuses_unknown_settings(fairbench_cli):
    assert_clean_error(fairbench_cli("bench", "overhead", "colour=red"), "unknown bench setting 'colour'")


def test_leaderboard_of_a_folder_without_records(fairbench_cli, tmp_path):
    assert_clean_error(fairbench_cli("leaderboard", str(tmp_path)), "no results.jsonl")


def test_leaderboard_names_a_corrupt_record(fairbench_cli, tmp_path):
    (tmp_path / "results.jsonl").write_text('{"status": "ok"\n')
    assert_clean_error(fairbench_cli("leaderboard", str(tmp_path)), "results.jsonl:1")


def test_a_failed_cell_is_named_and_the_exit_code_is_1(fairbench_cli, tmp_path):
    proc = fairbench_cli(
        "run",
        "suite=ci",
        "methods=[random,dm]",
        "distill.lr_img=.inf",
        "distill.iterations=2",
        "distill.real_batch=4",
        "models.convnet.width=4",
        "eval.epochs=1",
        "num_eval=1",
        f"out={tmp_path / 'out'}",
    )
    assert proc.returncode == 1, proc.stderr
    assert "1 cells failed" in proc.stderr and "cmnist-mini ipc=10 dm seed=0" in proc.stderr
    assert "random" in proc.stdout and " dm " not in proc.stdout  # the table keeps the cells that ran
