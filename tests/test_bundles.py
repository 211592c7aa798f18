"""From a run to a verified leaderboard entry: submit, verify (every clause), add, render.

One tiny run (random real images, 2 evaluation epochs, 2 runs) is made once per session and
submitted once; each tampered bundle is a copy of it with one thing changed, verified in-process
by one shared Verifier (the dataset and its contact index are built once).
"""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import checkout_env, fairbench_command
from scipy import stats

from fairbench.board.bundle import MANIFEST, BundleUnreadable, open_bundle, sha256
from fairbench.board.entries import add_bundle
from fairbench.board.verify import Verifier, shape_reasons, tolerance, verify_settings
from fairbench.cli import main
from fairbench.core.errors import FairbenchError
from fairbench.data.colored import COLOR_NAMES
from fairbench.distill import SyntheticSet
from fairbench.distill.synsets import load_synset, save_synset


def cli(*args, cwd):
    return subprocess.run(
        fairbench_command(*args), cwd=cwd, env=checkout_env(), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-run")
    proc = cli(
        "run",
        "suite=ci",
        "methods=[random]",
        "distill.iterations=2",
        "eval.epochs=2",
        "num_eval=2",
        "out=run",
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    return root / "run"


@pytest.fixture(scope="session")
def bundle(tiny_run, tmp_path_factory):
    meta = tmp_path_factory.mktemp("meta") / "meta.yaml"
    meta.write_text("name: tiny random\npaper: https://example.org/paper\nauthors: [A. Author]\n")
    out = tiny_run.parent / "bundle"
    proc = cli("submit", str(tiny_run), "-o", str(out), "--meta", str(meta), cwd=tiny_run.parent)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def verifier():
    # the default 10 fresh runs; the tiny run's protocol (2 epochs) is no registered suite's
    return Verifier(verify_settings(["seed=3", "protocols=any"]))


def tampered(bundle, tmp_path, edit):
    """A copy of ``bundle`` whose manifest went through ``edit(manifest, folder)``."""
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    edit(manifest, copy)
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


def replace_images(manifest, folder, images):
    cell = manifest["cells"][0]
    path = folder / cell["synset"]
    syn, metadata = load_synset(path)
    save_synset(path, SyntheticSet(images(syn), syn.labels, syn.extras), metadata)
    cell["synset_sha256"] = sha256(path)  # a careful forger updates the hash too


def test_the_manifest_lists_each_cell_with_its_claims_and_provenance(bundle, tiny_run):
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["format"] == "fairbench-bundle/1" and manifest["name"] == "tiny random"
    assert manifest["authors"] == ["A. Author"]
    (cell,) = manifest["cells"]
    record = json.loads((tiny_run / "results.jsonl").read_text().splitlines()[0])
    assert cell["protocol_id"] == record["protocol_id"] and cell["protocol"] == record["protocol"]
    assert cell["claimed"]["acc"]["runs"] == record["metrics"]["acc"]["runs"]
    assert cell["provenance"] == record.get("provenance", {"source": "built-in"})
    assert (cell["dataset"], cell["ipc"], cell["method"]) == ("cmnist-mini", 10, "random")
    assert (bundle / cell["synset"]).suffix == ".safetensors" and sha256(bundle / cell["synset"]) == cell[
        "synset_sha256"
    ]


def test_a_zip_bundle_holds_the_same_manifest(tiny_run, bundle, tmp_path, capsys):
    assert main(["submit", str(tiny_run), "-o", str(tmp_path / "b.zip")]) == 0
    with open_bundle(tmp_path / "b.zip") as (manifest, folder):
        assert (
            manifest["cells"][0]["synset_sha256"]
            == json.loads((bundle / MANIFEST).read_text())["cells"][0]["synset_sha256"]
        )
        assert (folder / manifest["cells"][0]["synset"]).is_file()
    assert main(["submit", str(tiny_run), "-o", str(tmp_path / "b.zip")]) == 2
    assert "exists" in capsys.readouterr().err


def test_verify_exits_2_for_an_unreadable_bundle_and_1_for_a_failing_one(bundle, tmp_path, capsys):
    (tmp_path / "junk.zip").write_text("not a zip")
    assert main(["verify", str(tmp_path / "junk.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairbench: error:") and "not a zip" in err

    def change_file(manifest, folder):
        (folder / manifest["cells"][0]["synset"]).open("ab").write(b"\0")

    assert main(["verify", str(tampered(bundle, tmp_path, change_file)), "protocols=any"]) == 1
    assert "NOT verified" in capsys.readouterr().out
    with pytest.raises(BundleUnreadable, match="no manifest.json"):
        with open_bundle(tmp_path):
            pass


def test_the_honest_bundle_verifies_and_becomes_a_rendered_entry(bundle, tmp_path, verifier, capsys):
    root = tmp_path / "board"
    verification, written = add_bundle(bundle, root, verifier)
    assert verification["verified"], verification["reasons"]
    (path,) = written
    assert list((root / "entries").glob("*.json")) == [path]
    entry = json.loads(path.read_text())
    claimed = json.loads((bundle / MANIFEST).read_text())["cells"][0]
    assert entry["reported"]["metrics"] == claimed["claimed"]
    fresh = entry["measured"]["eval_seeds"]
    assert len(fresh) == 10 and not set(fresh) & set(claimed["eval_seeds"]) and entry["measured"]["master_seed"] == 3
    assert entry["measured"]["contact"]["flagged"] is False and entry["measured"]["device"] == "cpu"
    assert entry["provenance"] == {"source": "built-in"} and entry["submission"]["name"] == "tiny random"
    (root / "notes.md").write_text("Budgets: 1 iteration <of> nothing.\n\nA second paragraph.\n")
    assert main(["leaderboard", "render", "--root", str(root)]) == 0
    readme = (root / "README.md").read_text()
    assert "## cmnist-mini, IPC 10" in readme and entry["protocol_id"] in readme and "tiny random" in readme
    assert readme.index("Budgets: 1 iteration <of> nothing.\n\nA second paragraph.") < readme.index("## cmnist-mini")
    page = (root / "index.html").read_text()
    assert (
        "data:image/png;base64" in page
        and "<pre class='notes'>Budgets: 1 iteration &lt;of&gt; nothing.\n\nA second paragraph.</pre>" in page
    )
    assert r"\toprule" in (root / "leaderboard.tex").read_text()
    assert (root / "plots" / "cmnist-mini-ipc10-tradeoff.svg").is_file()
    # the entry carries the fresh runs' per-group accuracies, which the README shows as bars
    assert entry["measured"]["group_acc"]["groups"] == COLOR_NAMES
    assert len(entry["measured"]["group_acc"]["runs"]) == 10
    assert "plots/cmnist-mini-ipc10-groups.svg" in readme
    assert (root / "plots" / "cmnist-mini-ipc10-groups.svg").is_file()


def test_edited_claimed_numbers_do_not_verify(bundle, tmp_path, verifier):
    def inflate(manifest, _):
        claim = manifest["cells"][0]["claimed"]["acc"]
        claim["runs"] = [run + 40 for run in claim["runs"]]
        claim["mean"] += 40

    result, written = add_bundle(tampered(bundle, tmp_path, inflate), tmp_path / "board", verifier)
    assert not result["verified"] and written == [] and not (tmp_path / "board").exists()
    assert any("acc: claimed" in r and "> tolerance" in r for r in result["reasons"]), result["reasons"]


def test_a_claimed_mean_that_is_not_its_runs_mean_does_not_verify(bundle, tmp_path, verifier):
    def edit(manifest, _):
        manifest["cells"][0]["claimed"]["deo_mean"]["mean"] -= 20

    result = verifier.verify(tampered(bundle, tmp_path, edit))
    assert any("not the mean of its claimed runs" in r for r in result["reasons"]), result["reasons"]


def test_synthetic_images_replaced_by_test_images_do_not_verify(bundle, tmp_path, verifier):
    test = verifier.dataset(
        "cmnist-mini", json.loads((bundle / MANIFEST).read_text())["cells"][0]["dataset_params"]
    ).test

    def swap(manifest, folder):
        def images(syn):
            picked = torch.cat([torch.nonzero(test.labels == c)[:10, 0] for c in range(test.num_classes)])
            return test.normalize(test.images[picked])

        replace_images(manifest, folder, images)

    result = verifier.verify(tampered(bundle, tmp_path, swap))
    assert not result["verified"]
    contact = next(iter(result["sets"].values()))["contact"]
    assert contact["count"] == 100 and contact["min_test"] < 1e-5 and contact["min_ratio"] < 1e-3
    assert any("test-set contact: 100 of 100 images" in r for r in result["reasons"]), result["reasons"]


def test_a_bundle_of_shifted_noisy_test_images_exits_1_naming_the_contact(bundle, tmp_path, verifier, capsys):
    """Test images shifted by one pixel with faint noise: the pixel-space check this replaced missed
    them. The set fails its checks, so its claims (whatever they are) are never the reason."""
    test = verifier.dataset(
        "cmnist-mini", json.loads((bundle / MANIFEST).read_text())["cells"][0]["dataset_params"]
    ).test
    noise = torch.Generator().manual_seed(0)

    def swap(manifest, folder):
        def images(syn):
            picked = torch.cat([torch.nonzero(test.labels == c)[:10, 0] for c in range(test.num_classes)])
            shifted = torch.roll(test.normalize(test.images[picked]), 1, dims=3)
            return shifted + 0.03 * torch.randn(shifted.shape, generator=noise)

        replace_images(manifest, folder, images)

    assert main(["verify", str(tampered(bundle, tmp_path, swap)), "protocols=any"]) == 1
    out = capsys.readouterr().out
    assert "NOT verified" in out and "test-set contact: 100 of 100 images" in out, out


@pytest.mark.parametrize(
    "images, reason",
    [
        (lambda syn: syn.images[:50], "images are torch.float32 (50, 3, 32, 32), expected float (100, 3, 32, 32)"),
        (lambda syn: syn.images.masked_fill(torch.rand(syn.images.shape) < 0.01, float("nan")), "NaN or infinite"),
        (lambda syn: (syn.images * 0.5 + 0.5) * 255, "outside the normalised range"),
    ],
)
def test_sets_of_the_wrong_shape_or_values_do_not_verify(bundle, tmp_path, verifier, images, reason):
    result = verifier.verify(tampered(bundle, tmp_path, lambda m, f: replace_images(m, f, images)))
    assert any(reason in r for r in result["reasons"]), result["reasons"]


def test_a_changed_file_or_a_changed_protocol_does_not_verify(bundle, tmp_path, verifier):
    def edits(manifest, folder):
        first = manifest["cells"][0]
        changed = dict(first, synset="synsets/changed.safetensors")
        shutil.copy(folder / first["synset"], folder / changed["synset"])
        (folder / changed["synset"]).open("ab").write(b"\0")
        first["protocol"]["evaluator"]["train"]["epochs"] = 1
        manifest["cells"] += [changed]

    reasons = verifier.verify(tampered(bundle, tmp_path, edits))["reasons"]
    assert any("is not the hash of its protocol" in r for r in reasons), reasons
    assert any("SHA-256 differs" in r for r in reasons), reasons


def test_labels_and_idc_extras_are_checked(bundle, verifier):
    splits = verifier.dataset("cmnist-mini", json.loads((bundle / MANIFEST).read_text())["cells"][0]["dataset_params"])
    labels = torch.arange(10).repeat_interleave(2 * 4)  # IDC: ipc 2, factor 2 → 8 images per class
    idc = SyntheticSet(torch.zeros(80, 3, 32, 32), labels, {"factor": 2, "stored_per_class": 2})
    assert shape_reasons(idc, splits, 2) == []
    assert "stored_per_class 2 is not the ipc 3" in shape_reasons(idc, splits, 3)[0]
    wrong = SyntheticSet(torch.zeros(20, 3, 32, 32), torch.zeros(20, dtype=torch.long))
    assert "labels are not classes 0..9 with 2 images each" in shape_reasons(wrong, splits, 2)[0]


# ten fresh deo_mean runs of the honest quickstart-dc dc+fairdd set (verified with seed=5), whose
# two claimed runs were 55 and 59: a fresh 2-run draw of the same set once measured 43
QUICKSTART_DC_DEO_MEAN = [56.0, 56.0, 50.0, 48.0, 45.0, 76.0, 52.0, 59.0, 62.0, 46.0]


def test_the_tolerance_follows_the_spread_of_the_fresh_runs():
    runs = QUICKSTART_DC_DEO_MEAN
    t9 = stats.t.ppf(stats.norm.cdf(3), 9)  # 4.09
    assert tolerance(2, runs, z=3, floor=0.0) == pytest.approx(t9 * np.std(runs, ddof=1) * (1 / 2 + 1 / 10) ** 0.5)
    honest = tolerance(2, runs, z=3, floor=2.0, min_std=3.0)
    assert abs(57.0 - np.mean(runs)) <= honest < 40  # the honest claim, not a 40-point edit
    assert tolerance(5, runs, z=3, floor=2.0) < honest  # more claimed runs: a tighter check
    assert tolerance(2, runs[:3], z=3, floor=2.0) > 2 * honest  # few fresh runs: Student's t widens it
    assert tolerance(2, [50.0] * 10, z=3, floor=2.0) == 2.0  # no spread: the floor
    # fresh runs that happen to agree still carry the spread honest runs show (min_std)
    assert tolerance(2, [50.0, 50.1] * 5, z=3, floor=2.0, min_std=3.0) == pytest.approx(t9 * 3.0 * 0.6**0.5)


def test_verify_needs_three_fresh_runs(bundle, capsys):
    assert main(["verify", str(bundle), "num_eval=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairbench: error:") and "num_eval must be an integer of at least 3" in err
    with pytest.raises(FairbenchError, match="at least 3"):
        verify_settings(["num_eval=true"])


def test_the_run_wrote_its_plots_and_show_draws_its_set(tiny_run, tmp_path, capsys):
    assert (tiny_run / "plots" / "cmnist-mini-ipc10-tradeoff.png").is_file()
    assert (tiny_run / "plots" / "cmnist-mini-ipc10-groups.svg").is_file()
    # each group's accuracy: in the record, per evaluation run, and pooled in leaderboard_groups.csv
    record = json.loads((tiny_run / "results.jsonl").read_text().splitlines()[0])
    assert record["group_acc"]["groups"] == COLOR_NAMES and len(record["group_acc"]["runs"]) == 2
    worst = record["metrics"]["worst_group_acc"]["runs"][0]
    assert min(a for a in record["group_acc"]["runs"][0] if a is not None) == worst
    groups = pd.read_csv(tiny_run / "leaderboard_groups.csv")
    assert list(groups.group) == COLOR_NAMES and (groups.runs == 2).all()
    (synset,) = (tiny_run / "synsets").glob("*.safetensors")
    assert main(["show", str(synset), "-o", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "grid.svg").is_file()
    shutil.copy(synset, tmp_path / "set.pt")
    assert main(["show", str(tmp_path / "set.pt"), "-o", str(tmp_path / "pt.png")]) == 2
    assert "pickles and .pt files" in capsys.readouterr().err and not (tmp_path / "pt.png").exists()
