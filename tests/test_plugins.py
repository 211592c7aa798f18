"""The extension API from the outside: plugins registered, found, checked, and traced in records."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import REPO, checkout_env

import fairbench
from fairbench.cli import main
from fairbench.core import registry
from fairbench.data.builders import DATASET_BUILDERS
from fairbench.distill import BASES, method_hparams, method_ids
from fairbench.distill.aggregation import VARIANTS
from fairbench.models.builders import MODEL_BUILDERS
from fairbench.run import plugins
from fairbench.testing import check_method

BUILT_IN_METHODS = method_ids()


@pytest.fixture
def isolated_registries():
    """Whatever a test registers is gone after it, so no plugin leaks into another test's method ids."""
    tables = [VARIANTS, BASES, DATASET_BUILDERS, MODEL_BUILDERS]
    saved = [(dict(t._items), dict(t._sources)) for t in tables]
    code_entries = {k: dict(v) for k, v in registry._code_entries.items()}
    include, loaded = list(registry._include_dirs), dict(plugins._loaded)
    yield
    for table, (items, sources) in zip(tables, saved):
        table._items, table._sources = items, sources
    registry._code_entries.clear()
    registry._code_entries.update(code_entries)
    registry._include_dirs[:] = include
    registry._cache.clear()
    plugins._loaded.clear()
    plugins._loaded.update(loaded)


def write_plugin(folder, name, body):
    path = folder / f"{name}.py"
    path.write_text("import torch\nimport fairbench\nfrom fairbench import MatchingTerms\n\n" + textwrap.dedent(body))
    return path


@pytest.mark.parametrize("method_id", BUILT_IN_METHODS)
def test_every_built_in_method_passes_check_method(method_id):
    report = check_method(method_id)
    assert report.ok, str(report)
    assert len(report.passed) == 7  # every clause, the unknown-group one included


# --- faults a broken plugin must be told about, one clause each ---------------------------------

BROKEN = """
@fairbench.register_variant("halfsum")
def halfsum(labels, groups, num_classes, num_groups):
    count = torch.bincount(labels, minlength=num_classes)
    return MatchingTerms(labels, 0.5 / count[labels], (count > 0).unsqueeze(1), 1)

@fairbench.register_variant("negative")
def negative(labels, groups, num_classes, num_groups):
    count = torch.bincount(labels, minlength=num_classes)
    return MatchingTerms(labels, -1.0 / count[labels], (count > 0).unsqueeze(1), 1)

@fairbench.register_variant("allactive")
def allactive(labels, groups, num_classes, num_groups):
    count = torch.bincount(labels, minlength=num_classes)
    return MatchingTerms(labels, 1.0 / count[labels], torch.ones(num_classes, 1, dtype=torch.bool), 1)

class Broken(fairbench.Distiller):
    accepts = ("mean",)
    defaults = {"iterations": 3}

@fairbench.register_base("nanbase")
class NaNs(Broken):
    def distill(self, train, ipc, ctx):
        images = torch.full((train.num_classes * ipc, *train.image_shape), float("nan"))
        return fairbench.SyntheticSet(images, torch.arange(train.num_classes).repeat_interleave(ipc))

@fairbench.register_base("shapebase")
class WrongShape(Broken):
    def distill(self, train, ipc, ctx):
        images = torch.zeros(train.num_classes * (ipc + 1), *train.image_shape)
        return fairbench.SyntheticSet(images, torch.arange(train.num_classes).repeat_interleave(ipc + 1))

@fairbench.register_base("noisebase")
class Unseeded(Broken):
    def distill(self, train, ipc, ctx):
        gen = torch.Generator().manual_seed(int.from_bytes(__import__("os").urandom(4), "little"))
        images = torch.rand(train.num_classes * ipc, *train.image_shape, generator=gen)
        return fairbench.SyntheticSet(images, torch.arange(train.num_classes).repeat_interleave(ipc))

@fairbench.register_base("crashbase")
class Crash(Broken):
    def distill(self, train, ipc, ctx):
        raise RuntimeError("boom")
"""


@pytest.mark.parametrize(
    "method_id,clause,fragment",
    [
        ("dm+halfsum", "matching terms well formed", "sum to 0.5"),
        ("dm+negative", "matching terms well formed", "negative"),
        ("dm+allactive", "matching terms well formed", "absent from the batch"),
        ("nanbase", "finite", "NaN"),
        ("shapebase", "shape, dtype, device and labels", "expected 2 images per class"),
        ("noisebase", "same seed, same set", "different"),
        ("crashbase", "end to end", "RuntimeError: boom"),
    ],
)
def test_a_broken_plugin_gets_one_line_per_fault(isolated_registries, tmp_path, capsys, method_id, clause, fragment):
    path = write_plugin(tmp_path, "broken", BROKEN)
    assert main(["check-method", method_id, f"plugins=[{path}]"]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL  {clause}:") and fragment in failed[0]


def test_check_method_proves_the_test_split_is_not_handed_over(isolated_registries, tmp_path):
    write_plugin(
        tmp_path,
        "peek",
        """
    import gc
    from fairbench.testing import _SealedSplit

    @fairbench.register_base("peek")
    class Peek(fairbench.Distiller):
        accepts = ()
        def distill(self, train, ipc, ctx):
            test = next(o for o in gc.get_objects() if isinstance(o, _SealedSplit))
            images = train.normalize(test.images[:1]).expand(train.num_classes * ipc, -1, -1, -1)
            return fairbench.SyntheticSet(images.clone(), torch.arange(train.num_classes).repeat_interleave(ipc))
    """,
    )
    plugins.load_plugin(str(tmp_path / "peek.py"))
    report = check_method("peek")
    assert [c for c, _ in report.failed] == ["test split untouched"]


# --- registration, hyperparameters, discovery ----------------------------------------------------


def test_a_plugin_file_registers_a_variant_and_a_base_with_class_defaults(isolated_registries, tmp_path):
    path = write_plugin(
        tmp_path,
        "mine",
        '''
    @fairbench.register_variant("mine")
    def mine(labels, groups, num_classes, num_groups):
        """equal weights per class"""
        count = torch.bincount(labels, minlength=num_classes)
        return MatchingTerms(labels, 1.0 / count[labels], (count > 0).unsqueeze(1), 1)

    @fairbench.register_base("copy")
    class Copy(fairbench.Distiller):
        accepts = ("mean",)
        defaults = {"iterations": 7, "temperature": 0.5}
        def distill(self, train, ipc, ctx):
            images, labels = self.initial_images(train, ipc, fairbench.ClassSampler(train.labels, train.num_classes))
            return fairbench.SyntheticSet(images, labels)
    ''',
    )
    plugins.activate(plugins=[str(path)])
    ids = method_ids()
    assert {"dm+mine", "dc+mine", "mtt+mine", "copy", "copy+mine", "copy+fairdd"} <= set(ids)
    assert "random+mine" not in ids and "copy+wbary" not in ids  # kinds decide, not names
    assert method_hparams("copy+mine", "cmnist-mini", 10) == {"iterations": 7, "temperature": 0.5}
    assert method_hparams("copy", "", 10, {"temperature": 2.0, "copy": {"iterations": 3}}) == {
        "iterations": 3,
        "temperature": 2.0,
    }
    about = fairbench.method_provenance("copy+mine")
    assert about["source"] == "plugin" and about["distribution"] is None and about["hash"].startswith("sha256:")
    assert fairbench.method_provenance("dm+cobra") == {"source": "built-in"}
    assert check_method("copy+mine").ok


def test_two_registrations_of_one_name_name_both_sources(isolated_registries, tmp_path, capsys):
    path = write_plugin(
        tmp_path,
        "clash",
        """
    @fairbench.register_variant("fairdd")
    def fairdd(labels, groups, num_classes, num_groups):
        raise AssertionError
    """,
    )
    assert main(["list", "methods", f"plugins=[{path}]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "variant 'fairdd' registered twice" in err
    assert "fairbench.distill.aggregation.fairdd" in err and "clash" in err


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("import no_such_module_here\n", "ModuleNotFoundError: No module named 'no_such_module_here'"),
        ("raise RuntimeError('half done')\n", "RuntimeError: half done"),
        ("@fairbench.register_variant('odd', kind='median')\ndef odd(*a): pass\n", "unknown kind 'median'"),
    ],
)
def test_a_plugin_that_fails_to_import_is_one_line_naming_it(isolated_registries, tmp_path, capsys, body, fragment):
    path = write_plugin(tmp_path, "bad", body)
    assert main(["run", "--dry-run", f"plugins=[{path}]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"fairbench: error: plugin '{path}'") and fragment in err


def test_include_path_adds_suites_and_method_yaml_for_a_plugin_base(isolated_registries, tmp_path, capsys):
    home = tmp_path / "mine"
    (home / "registry" / "methods").mkdir(parents=True)
    (home / "suites").mkdir()
    (home / "registry" / "methods" / "copy2.yaml").write_text(
        "description: copies real images\ndefaults: {iterations: 9}\nipc:\n  10: {iterations: 11}\n"
    )
    plugin = write_plugin(
        tmp_path,
        "copy2",
        """
    @fairbench.register_base("copy2")
    class Copy(fairbench.Distiller):
        accepts = ()
        def distill(self, train, ipc, ctx):
            raise AssertionError
    """,
    )
    (home / "suites" / "mysuite.yaml").write_text(
        f"description: my suite\nplugins: [{plugin}]\nmethods: [copy2, dm]\nipc: [10]\n"
    )
    assert main(["run", "--dry-run", "suite=mysuite", f"include_path=[{home}]"]) == 0
    out = capsys.readouterr().out
    assert "copy2" in out and " 11 " in out and "plugin" not in out.split("copy2")[0]
    assert "built-in" in out and "sha256:" in out
    assert main(["list", "suites", f"include_path=[{home}]"]) == 0
    assert "mysuite" in capsys.readouterr().out


def test_a_plugin_dataset_and_evaluator(isolated_registries, tmp_path, capsys):
    path = write_plugin(
        tmp_path,
        "world",
        '''
    from fairbench.testing import tiny_splits

    @fairbench.register_dataset("tiny", params={"seed": 0}, ranges={"seed": "[0, 10]"})
    def tiny(root, seed):
        """three classes, two groups, 8x8"""
        train, test = tiny_splits(seed)
        return fairbench.DatasetSplits(name="", train=train, test=train, source="made in memory")

    @fairbench.register_evaluator("linear", model={"bias": True})
    def linear(in_channels, num_classes, image_size, bias):
        inputs = in_channels * image_size ** 2
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(inputs, num_classes, bias=bias))
    ''',
    )
    assert main(["data", "tiny", f"plugins=[{path}]"]) == 0
    assert "train: 72 samples" in capsys.readouterr().out
    assert (
        main(["run", "--dry-run", "datasets=[tiny]", "evaluators=[linear]", "dataset.seed=11", f"plugins=[{path}]"])
        == 2
    )
    assert "seed must lie in [0, 10], got 11" in capsys.readouterr().err
    out = tmp_path / "out"
    assert (
        main(
            [
                "run",
                "datasets=[tiny]",
                "evaluators=[linear]",
                "methods=[random]",
                "ipc=[2]",
                "num_eval=1",
                "eval.epochs=1",
                f"out={out}",
                f"plugins=[{path}]",
            ]
        )
        == 0
    )
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert record["dataset"] == "tiny" and record["evaluator"] == "linear"
    assert record["provenance"] == {"source": "built-in"}


# --- the example plugin, installed as a user installs it -----------------------------------------


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """examples/fairbench-sqrt built and installed like a wheel into a folder put on the path: its
    entry point is then found the way a pip-installed plugin's is."""
    tmp = tmp_path_factory.mktemp("example")
    source, target = tmp / "src", tmp / "site"
    subprocess.run(["cp", "-r", str(REPO / "examples" / "fairbench-sqrt"), str(source)], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return tmp, target


def test_the_example_plugin_runs_through_every_command(installed_example):
    tmp, target = installed_example
    env = checkout_env()
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{target}"
    out = tmp / "out"
    script = textwrap.dedent(f"""
        from fairbench.cli import main
        codes = [main(["list", "methods"]), main(["check-method", "dm+sqrt"]),
                 main(["run", "--dry-run", "methods=[dm+sqrt,pixel]", "suite=cmnist", "ipc=[10]", "data_root=nowhere"]),
                 main(["run", "methods=[dm+sqrt,pixel+sqrt]", "ipc=[2]", "num_eval=1", "eval.epochs=1",
                       "distill.iterations=2", "distill.real_batch=8", "models.convnet.width=4", "out={out}"])]
        print("codes", codes)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "codes [0, 0, 0, 0]" in proc.stdout, proc.stderr[-2000:]
    table = proc.stdout.split("dm+sqrt passes check-method")[0]
    listed = {line.split()[0]: line for line in table.splitlines()[2:]}
    assert "fairbench-sqrt 0.1.0" in listed["dm+sqrt"] and "built-in" in listed["dm+fairdd"]
    assert {"mtt+sqrt", "pixel", "pixel+cobra"} <= set(listed) and "pixel+wbary" not in listed
    assert "dm+sqrt passes check-method" in proc.stdout
    plan = proc.stdout.split("suite cmnist: 2 cells")[1]
    assert "pixel" in plan and "200" in plan and "fairbench-sqrt 0.1.0 sha256:" in plan  # pixel.yaml's iterations
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in records} == {"dm+sqrt", "pixel+sqrt"} and {r["status"] for r in records} == {"ok"}
    for record in records:
        about = record["provenance"]
        assert about["source"] == "plugin" and about["distribution"] == "fairbench-sqrt"
        assert about["version"] == "0.1.0" and about["hash"].startswith("sha256:")
    assert (out / "leaderboard.md").read_text().count("sqrt") >= 2


def test_the_sqrt_variant_weights_groups_by_the_root_of_their_size(installed_example, monkeypatch, isolated_registries):
    _, target = installed_example
    monkeypatch.syspath_prepend(str(target))
    from fairbench_sqrt import sqrt_weights

    labels = torch.tensor([0] * 10 + [1] * 4)
    groups = torch.tensor([0] * 9 + [1] + [0, 0, 1, 1])
    terms = sqrt_weights(labels, groups, 2, 2)
    share = torch.zeros(2, 2).index_put_((labels, groups), terms.weight, accumulate=True)
    assert share[0, 0] / share[0, 1] == pytest.approx(3.0)  # sqrt(9) / sqrt(1)
    assert share[1].tolist() == pytest.approx([0.5, 0.5])
