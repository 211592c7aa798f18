"""Bundles a stranger made: nothing malformed may crash, stall, steer the evaluation or run code.

Every probe is a copy of one forged bundle (no run, no distillation: a set of blank images under
suite ci's protocol for ``random``) with one thing wrong. Each must end with one
``fairbench: error:`` line and exit 2 (unreadable or unacceptable input) or a verdict and exit 1,
before any evaluation, without writing anything outside the bundle.
"""

import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fairbench.board import bundle as bundle_module
from fairbench.board.bundle import MANIFEST, open_bundle, sha256
from fairbench.board.entries import add_bundle, entry_name
from fairbench.board.protocols import suite_of
from fairbench.board.render import _latex_escape, latex, markdown, measured_frame, page
from fairbench.board.verify import Verifier, render_verification, verify_settings
from fairbench.cli import main
from fairbench.core.errors import FairbenchError
from fairbench.core.protocol import protocol_id, protocol_of
from fairbench.distill import SyntheticSet
from fairbench.distill.synsets import save_synset
from fairbench.evaluation.metrics import METRICS, summarize_runs
from fairbench.run.config import resolve_run_config
from fairbench.run.plan import make_plan, resolved_config

REPO = Path(__file__).resolve().parent.parent
SYNSET = "synsets/set.safetensors"


def ci_protocol() -> dict:
    """Suite ci's protocol for method random (cmnist-mini, IPC 10, convnet)."""
    config = resolve_run_config(["suite=ci", "methods=[random]"])
    (cell,) = make_plan(config)
    return protocol_of(resolved_config(cell, cell.evaluators[0], config))


def write_set(path: Path, images=None, labels=None, metadata=None, extras=None, raw_metadata=None) -> None:
    """A synthetic-set file, written with safetensors directly so that any dtype or metadata can be forged."""
    from safetensors.torch import save_file

    images = torch.zeros(100, 3, 32, 32) if images is None else images
    labels = torch.arange(10).repeat_interleave(10) if labels is None else labels
    meta = {"dataset": "cmnist-mini", "ipc": 10, "method": "random"} if metadata is None else metadata
    if extras is not None:
        meta = dict(meta, extras=extras)
    header = {"fairbench": raw_metadata if raw_metadata is not None else json.dumps(meta)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"images": images.contiguous(), "labels": labels.contiguous()}, str(path), metadata=header)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fairbench-cache")


@pytest.fixture(autouse=True)
def private_dataset_cache(shared_cache, monkeypatch):
    """One dataset cache for this module's tests (the probes that load cmnist-mini build it once)."""
    monkeypatch.setenv("FAIRBENCH_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="module")
def verifier():
    """A verifier (protocols=any) for the probes that get as far as the networks-fit check; it
    holds cmnist-mini's shapes (3x32x32 images, 10 classes) instead of the data, which none of
    them reads, so no probe pays for building the dataset."""
    verifier = Verifier(verify_settings(["seed=1", "protocols=any"]))
    train = SimpleNamespace(image_shape=(3, 32, 32), num_classes=10)
    params = ci_protocol()["dataset"]["params"]
    verifier._datasets[protocol_id({"name": "cmnist-mini", "params": params})] = SimpleNamespace(train=train)
    return verifier


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> Path:
    """A well-formed bundle folder of one cell under suite ci's registered protocol."""
    folder = tmp_path_factory.mktemp("forged") / "bundle"
    save_synset(
        folder / SYNSET,
        SyntheticSet(torch.zeros(100, 3, 32, 32), torch.arange(10).repeat_interleave(10)),
        {"dataset": "cmnist-mini", "ipc": 10, "method": "random"},
    )
    protocol = ci_protocol()
    claimed = summarize_runs([{m: 50.0 for m in METRICS}, {m: 52.0 for m in METRICS}])
    cell = {
        "dataset": "cmnist-mini",
        "dataset_params": protocol["dataset"]["params"],
        "ipc": 10,
        "method": "random",
        "seed": 0,
        "evaluator": "convnet",
        "synset": SYNSET,
        "synset_sha256": sha256(folder / SYNSET),
        "protocol_id": protocol_id(protocol),
        "protocol": protocol,
        "claimed": claimed,
        "eval_seeds": [0, 1],
        "provenance": {"source": "built-in"},
    }
    manifest = {"format": "fairbench-bundle/1", "name": "forged", "authors": ["A. Forger"], "cells": [cell]}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def copy_of(forged: Path, tmp_path: Path, edit=None) -> Path:
    """A copy of the forged bundle whose manifest went through ``edit(manifest, folder)``."""
    copy = tmp_path / "probe"
    shutil.copytree(forged, copy, symlinks=True)
    if edit is not None:
        manifest = json.loads((copy / MANIFEST).read_text())
        edit(manifest, copy)
        (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


def one_line_error(capsys, code: int, *argv) -> str:
    """Run the CLI in-process; assert exit ``code`` with one ``fairbench: error:`` line; return it."""
    assert main(list(argv)) == code
    err = capsys.readouterr().err
    assert err.startswith("fairbench: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def zipped(folder: Path, out: Path, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out


def scratch_folders(base: Path) -> list[Path]:
    return list(base.glob("fairbench-bundle-*"))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """tempfile's folder for this test only, so a left-over scratch folder shows."""
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(base))
    return base


# --- 1. code execution and resource exhaustion ---------------------------------------------


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_cifar_batch_holding_a_reduce_payload_is_refused_without_running_it(tmp_path, capsys):
    import pickle

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    marker = tmp_path / "payload-ran"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": _Payload(marker), "labels": [0]}))
    err = one_line_error(capsys, 2, "data", "cifar10s", f"data_root={tmp_path / 'data'}")
    assert "posix.mkdir" in err and "never holds" in err
    assert not marker.exists()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(forged, tmp_path, capsys, private_tmp, monkeypatch):
    monkeypatch.setattr(bundle_module, "MIN_RATIO_BYTES", 1 << 14)  # a 64 MiB bomb stands for a 6 GiB one
    bomb = zipped(forged, tmp_path / "bomb.zip", {"synsets/zeros.safetensors": b"\0" * (64 << 20)})
    err = one_line_error(capsys, 2, "verify", str(bomb))
    assert "more than 400 times" in err and str(bomb) in err
    assert scratch_folders(private_tmp) == []


def test_a_zip_over_the_size_cap_or_with_too_many_members_is_refused(forged, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_BYTES", 1000)
    err = one_line_error(capsys, 2, "verify", str(zipped(forged, tmp_path / "big.zip")))
    assert "more than the 1000 allowed" in err
    monkeypatch.undo()
    many = {f"synsets/{i}.safetensors": b"" for i in range(bundle_module.MAX_MEMBERS)}
    err = one_line_error(capsys, 2, "verify", str(zipped(forged, tmp_path / "many.zip", many)))
    assert "members, more than the" in err


@pytest.mark.parametrize(
    "extra, reason",
    [
        ({"synsets/other.safetensors": b"x"}, "member 'synsets/other.safetensors' is not named by the manifest"),
        ({"run.sh": b"rm -rf ~"}, "member 'run.sh' is not named by the manifest"),
        ({"other/": b""}, "'other/' is a folder the manifest does not name"),
        ({"../escape": b"x"}, "would be written outside the bundle"),
    ],
)
def test_zip_members_the_manifest_does_not_name_are_refused(forged, tmp_path, capsys, private_tmp, extra, reason):
    err = one_line_error(capsys, 2, "verify", str(zipped(forged, tmp_path / "b.zip", extra)))
    assert reason in err
    assert scratch_folders(private_tmp) == [] and not (tmp_path / "escape").exists()


def test_a_zip_symlink_member_is_refused(forged, tmp_path, capsys):
    out = zipped(forged, tmp_path / "link.zip")
    with zipfile.ZipFile(out) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name == SYNSET:
                info.external_attr = (0o120777) << 16  # a symlink entry
                data = b"/etc/passwd"
            archive.writestr(info, data)
    assert "is a symbolic link, not a regular file" in one_line_error(capsys, 2, "verify", str(out))


def test_errors_about_a_zip_name_the_zip_and_the_scratch_folder_goes_on_every_exit(
    forged, tmp_path, capsys, private_tmp
):
    stale = private_tmp / "fairbench-bundle-999999999-left"  # a process killed -9 mid-verify left it
    stale.mkdir()
    copy = copy_of(forged, tmp_path)
    (copy / MANIFEST).write_text("{not json")
    err = one_line_error(capsys, 2, "verify", str(zipped(copy, tmp_path / "bad.zip")))
    assert f"{tmp_path / 'bad.zip'}:manifest.json: not JSON" in err and "fairbench-bundle-" not in err
    assert scratch_folders(private_tmp) == []
    with pytest.raises(KeyboardInterrupt), open_bundle(zipped(forged, tmp_path / "ok.zip")) as (_, folder):
        assert folder.parent == private_tmp
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM while verifying
    assert scratch_folders(private_tmp) == []


def test_a_huge_manifest_is_refused_by_size_before_it_is_parsed(forged, tmp_path, capsys):
    def pad(manifest, _):
        manifest["notes"] = "x" * (1 << 20)

    copy = copy_of(forged, tmp_path, pad)
    assert "more than the 1048576 a manifest may hold" in one_line_error(capsys, 2, "verify", str(copy))
    assert "more than the 1048576 allowed" in one_line_error(capsys, 2, "verify", str(zipped(copy, tmp_path / "m.zip")))


# --- 3. manifests and files of the wrong shape ---------------------------------------------


def _cell(key, value):
    def edit(manifest, _):
        manifest["cells"][0][key] = value

    return edit


def _top(key, value):
    def edit(manifest, _):
        manifest[key] = value

    return edit


def _claim(metric, key, value):
    def edit(manifest, _):
        manifest["cells"][0]["claimed"][metric][key] = value

    return edit


def _protocol_part(path, value):
    def edit(manifest, _):
        part = manifest["cells"][0]["protocol"]
        for key in path[:-1]:
            part = part[key]
        part[path[-1]] = value

    return edit


MALFORMED = {
    "claimed a string": (_cell("claimed", "high"), "cells.0.claimed"),
    "claim mean a string": (_claim("acc", "mean", "50"), "cells.0.claimed.acc.mean"),
    "claim runs a string": (_claim("acc", "runs", "50,52"), "cells.0.claimed.acc.runs"),
    "claim run a string": (_claim("acc", "runs", ["50", 52]), "cells.0.claimed.acc.runs.0"),
    "claim mean NaN": (_claim("acc", "mean", float("nan")), "finite"),
    "claim without std": (lambda m, _: m["cells"][0]["claimed"]["acc"].pop("std"), "claimed.acc.std"),
    "protocol a string": (_cell("protocol", "reference"), "cells.0.protocol"),
    "protocol dataset a string": (_protocol_part(["dataset"], "cmnist-mini"), "cells.0.protocol.dataset"),
    "protocol extra key": (_protocol_part(["shell"], "rm"), "cells.0.protocol.shell"),
    "synset an int": (_cell("synset", 5), "cells.0.synset"),
    "synset leaves the bundle": (_cell("synset", "../../etc/passwd"), "cells.0.synset"),
    "synset absolute": (_cell("synset", "/etc/passwd"), "cells.0.synset"),
    "synset hidden": (_cell("synset", "synsets/..x"), "cells.0.synset"),
    "dataset_params a list": (_cell("dataset_params", [1, 2]), "cells.0.dataset_params"),
    "ipc a float": (_cell("ipc", 10.0), "cells.0.ipc"),
    "ipc zero": (_cell("ipc", 0), "cells.0.ipc"),
    "seed a word": (_cell("seed", "zero"), "cells.0.seed"),
    "seed negative": (_cell("seed", -1), "cells.0.seed"),
    "seed 10^20": (_cell("seed", 10**20), "cells.0.seed"),
    "eval seeds empty": (_cell("eval_seeds", []), "cells.0.eval_seeds"),
    "sha256 short": (_cell("synset_sha256", "abc"), "cells.0.synset_sha256"),
    "protocol id not hex": (_cell("protocol_id", "zzzzzzzzzz"), "cells.0.protocol_id"),
    "extra cell key": (_cell("bonus", 1), "cells.0.bonus"),
    "cell key missing": (lambda m, _: m["cells"][0].pop("eval_seeds"), "cells.0.eval_seeds"),
    "extra manifest key": (_top("exec", "curl evil"), "exec"),
    "no cells": (_top("cells", []), "cells"),
    "cells a dict": (_top("cells", {}), "cells"),
    "name a dict": (_top("name", {"first": "x"}), "name"),
    "name too long": (_top("name", "n" * 201), "name"),
    "name two lines": (_top("name", "ok\n| injected |"), "name"),
    "notes too long": (_top("notes", "n" * 2001), "notes"),
    "authors a number": (_top("authors", 3), "authors"),
    "provenance too large": (_cell("provenance", {"source": "x" * 20000}), "cells.0.provenance"),
    "wrong format": (_top("format", "fairbench-bundle/9"), "not a fairbench-bundle/1 manifest"),
}


@pytest.mark.parametrize("edit, where", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_manifest_is_validated_whole_before_anything_is_read(forged, tmp_path, capsys, edit, where):
    err = one_line_error(capsys, 2, "verify", str(copy_of(forged, tmp_path, edit)))
    assert where in err, err


@pytest.mark.parametrize(
    "text, reason",
    [("[1, 2]", "not a fairbench-bundle/1 manifest"), ("\xff\xfe", "not JSON"), ("[" * 100000, "not JSON")],
    ids=["a list", "not UTF-8", "nested 10^5 deep"],
)
def test_a_manifest_that_is_not_a_json_object_is_refused(forged, tmp_path, capsys, text, reason):
    copy = copy_of(forged, tmp_path)
    (copy / MANIFEST).write_bytes(text.encode("latin1"))
    assert reason in one_line_error(capsys, 2, "verify", str(copy))


def _forged_set(**kwargs):
    def edit(manifest, folder):
        write_set(folder / SYNSET, **kwargs)
        manifest["cells"][0]["synset_sha256"] = sha256(folder / SYNSET)

    return edit


BAD_SETS = {
    "float16 images": (_forged_set(images=torch.zeros(100, 3, 32, 32, dtype=torch.float16)), "torch.float16"),
    "bfloat16 images": (_forged_set(images=torch.zeros(100, 3, 32, 32, dtype=torch.bfloat16)), "torch.bfloat16"),
    "float64 images": (_forged_set(images=torch.zeros(100, 3, 32, 32, dtype=torch.float64)), "torch.float64"),
    "0-d images": (_forged_set(images=torch.tensor(1.0)), "of shape ()"),
    "float labels": (_forged_set(labels=torch.zeros(100)), "labels are torch.float32"),
    "2-d labels": (
        _forged_set(labels=torch.zeros(10, 10, dtype=torch.long)),
        "labels are torch.int64 of shape (10, 10)",
    ),
    "extras a list": (_forged_set(extras=[1, 2]), "extras are a list"),
    "factor a word": (_forged_set(extras={"factor": "two"}), "extra 'factor' is 'two'"),
    "factor zero": (_forged_set(extras={"factor": 0}), "extra 'factor' is 0"),
    "metadata a list": (_forged_set(raw_metadata="[1, 2]"), "metadata is not a mapping"),
    "metadata missing": (_forged_set(metadata={}), "metadata is not a mapping naming the dataset"),
    "metadata not JSON": (_forged_set(raw_metadata="{oops"), "not a readable safetensors file"),
}


@pytest.mark.parametrize("edit, reason", BAD_SETS.values(), ids=BAD_SETS.keys())
def test_a_set_file_of_the_wrong_dtype_shape_or_metadata_is_unreadable(forged, tmp_path, capsys, edit, reason):
    copy = copy_of(forged, tmp_path, edit)
    err = one_line_error(capsys, 2, "verify", str(copy))
    assert reason in err and f"{copy}:{SYNSET}" in err, err
    err = one_line_error(capsys, 2, "show", str(copy / SYNSET), "-o", str(tmp_path / "grid.png"))
    assert reason in err and not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("content", [b"garbage, not safetensors", b""], ids=["garbage", "empty"])
def test_an_unreadable_set_exits_2_even_with_the_right_hash(forged, tmp_path, capsys, content):
    def edit(manifest, folder):
        (folder / SYNSET).write_bytes(content)
        manifest["cells"][0]["synset_sha256"] = sha256(folder / SYNSET)

    assert "not a readable safetensors file" in one_line_error(
        capsys, 2, "verify", str(copy_of(forged, tmp_path, edit))
    )


def test_a_pickled_set_exits_2(forged, tmp_path, capsys):
    def edit(manifest, folder):
        (folder / SYNSET).rename(folder / "synsets/set.pt")
        manifest["cells"][0]["synset"] = "synsets/set.pt"

    assert "pickles and .pt files can run code" in one_line_error(
        capsys, 2, "verify", str(copy_of(forged, tmp_path, edit))
    )


def _replace_synset(make):
    def edit(manifest, folder):
        (folder / SYNSET).unlink()
        make(folder / SYNSET, folder)

    return edit


def _symlinked_folder(path, folder):
    shutil.move(folder / "synsets", folder.parent / "elsewhere")
    (folder / "synsets").symlink_to(folder.parent / "elsewhere")


LINKS = {
    "link to /proc/self/pagemap": (_replace_synset(lambda p, f: p.symlink_to("/proc/self/pagemap")), "symbolic link"),
    "link to /dev/zero": (_replace_synset(lambda p, f: p.symlink_to("/dev/zero")), "symbolic link"),
    "a FIFO": (_replace_synset(lambda p, f: os.mkfifo(p)), "a FIFO"),
    "link to a valid set outside": (
        _replace_synset(
            lambda p, f: (shutil.copy(REPO / "pyproject.toml", f.parent / "x"), p.symlink_to(f.parent / "x"))
        ),
        "symbolic link",
    ),
    "synsets/ a symlinked folder": (lambda m, f: _symlinked_folder(None, f), "'synsets' is a symbolic link"),
    "manifest a symlink": (
        lambda m, f: (
            shutil.copy(f / MANIFEST, f.parent / "m.json"),
            (f / MANIFEST).unlink(),
            (f / MANIFEST).symlink_to(f.parent / "m.json"),
        ),
        "a symbolic link, not a regular file",
    ),
    "a stray file": (lambda m, f: (f / "notes.txt").write_text("hi"), "'notes.txt' is not named by the manifest"),
}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX links and FIFOs")
@pytest.mark.parametrize("edit, reason", LINKS.values(), ids=LINKS.keys())
def test_only_regular_files_inside_the_bundle_are_read(forged, tmp_path, capsys, edit, reason):
    copy = tmp_path / "probe"
    shutil.copytree(forged, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    edit(manifest, copy)
    assert reason in one_line_error(capsys, 2, "verify", str(copy))


def test_a_claim_missing_a_metric_is_a_verdict_not_a_crash(forged, tmp_path, verifier, monkeypatch):
    def edit(manifest, _):
        del manifest["cells"][0]["claimed"]["acc"]
        manifest["cells"][0]["claimed"]["bogus"] = {"mean": 1.0, "std": 0.0, "runs": [1.0, 1.0]}

    monkeypatch.setattr(Verifier, "_check_set", lambda self, cell, reason, read: ({"reasons": []}, None))
    result = verifier.verify(copy_of(forged, tmp_path, edit))
    assert not result["verified"]
    assert any("claims no runs of acc" in r for r in result["reasons"])
    assert any("'bogus', which is no metric" in r for r in result["reasons"])
    text = render_verification(result)
    assert "NOT verified" in text and "the protocol of registered suite ci" in text


# --- 2. the submitter must not steer the evaluation ------------------------------------------


def _steer(path, value, rehash=True):
    def edit(manifest, _):
        _protocol_part(path, value)(manifest, _)
        if rehash:  # a careful forger recomputes the id
            manifest["cells"][0]["protocol_id"] = protocol_id(manifest["cells"][0]["protocol"])

    return edit


def _renamed_method(name):
    def edit(manifest, folder):
        manifest["cells"][0]["method"] = name
        _steer(["method", "id"], name)(manifest, folder)

    return edit


STEERED = {
    "epochs 10^9": (_steer(["evaluator", "train", "epochs"], 10**9), [], "defined by no registered suite"),
    "epochs 1": (_steer(["evaluator", "train", "epochs"], 1), [], "defined by no registered suite"),
    "batch_size 0": (
        _steer(["evaluator", "train", "batch_size"], 0),
        ["protocols=any"],
        "eval.batch_size=0 is invalid",
    ),
    "lr -1": (_steer(["evaluator", "train", "lr"], -1.0), ["protocols=any"], "eval.lr=-1.0 is invalid"),
    "unknown train key": (
        _steer(["evaluator", "train", "shell"], 1),
        ["protocols=any"],
        "not one fairbench run accepts",
    ),
    "unknown method": (_renamed_method("nope"), ["protocols=any"], "unknown method 'nope'"),
    "rebuilt protocol differs": (
        _steer(["evaluator", "arch"], "resnet"),
        ["protocols=any"],
        "is not what fairbench run makes of the same run keys",
    ),
}


@pytest.mark.parametrize("edit, settings, reason", STEERED.values(), ids=STEERED.keys())
def test_a_bundle_cannot_steer_the_evaluation(forged, tmp_path, capsys, monkeypatch, edit, settings, reason):
    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated a refused protocol")

    monkeypatch.setattr("fairbench.board.verify.evaluate_synthetic", no_evaluation)
    err = one_line_error(capsys, 2, "verify", str(copy_of(forged, tmp_path, edit)), *settings)
    assert reason in err and "cell 0" in err, err


@pytest.mark.parametrize(
    "width, reason", [(10**6, "GiB free"), (0, "models.convnet.width=0 is invalid")], ids=["width 10^6", "width 0"]
)
def test_networks_that_cannot_fit_are_refused_before_any_evaluation(
    forged, tmp_path, verifier, monkeypatch, width, reason
):
    monkeypatch.setattr("fairbench.board.verify.evaluate_synthetic", None)  # calling it would fail the test
    with pytest.raises(FairbenchError, match=reason) as refused:
        verifier.verify(copy_of(forged, tmp_path, _steer(["evaluator", "model", "width"], width)))
    assert "cell 0" in str(refused.value) and "\n" not in str(refused.value)


def test_the_forged_protocol_is_suite_cis_and_a_changed_one_is_no_suites(forged):
    (cell,) = json.loads((forged / MANIFEST).read_text())["cells"]
    assert suite_of(cell) == "ci"
    changed = json.loads(json.dumps(cell))
    changed["protocol"]["evaluator"]["train"]["epochs"] = 1
    changed["protocol_id"] = protocol_id(changed["protocol"])
    assert suite_of(changed) is None


def test_leaderboard_add_refuses_a_protocol_no_suite_defines_unless_the_maintainer_accepts_it(
    forged, tmp_path, capsys, verifier, monkeypatch
):
    copy = copy_of(forged, tmp_path, _steer(["evaluator", "train", "epochs"], 1))
    err = one_line_error(capsys, 2, "leaderboard", "add", str(copy), "--root", str(tmp_path / "board"))
    assert "protocols=any" in err and not (tmp_path / "board").exists()
    monkeypatch.setattr(Verifier, "_check_set", lambda self, cell, reason, read: ({"reasons": ["stop here"]}, None))
    result, written = add_bundle(copy, tmp_path / "board", verifier)  # verifier: protocols=any
    assert written == [] and "defined by no registered suite (protocols=any)" in render_verification(result)


def test_verify_with_two_bundles_says_so(forged, capsys):
    err = one_line_error(capsys, 2, "verify", str(forged), str(forged))
    assert "verify takes one bundle" in err


# --- the leaderboard store ---------------------------------------------------------------------


def _entry_of(forged: Path, sha: str) -> dict:
    cell = json.loads((forged / MANIFEST).read_text())["cells"][0]
    return dict(cell, synset_sha256=sha)


def test_a_second_set_for_a_held_cell_key_is_refused_naming_the_first(forged, tmp_path, capsys):
    entries = tmp_path / "board" / "entries"
    entries.mkdir(parents=True)
    held = entries / entry_name(_entry_of(forged, "0" * 64))
    held.write_text(json.dumps({"format": "fairbench-entry/1", "synset_sha256": "0" * 64}))
    before = held.read_text()
    err = one_line_error(capsys, 2, "leaderboard", "add", str(forged), "--root", str(tmp_path / "board"))
    assert str(held) in err and "already holds" in err and held.read_text() == before


def test_of_two_concurrent_adds_the_second_is_refused_under_the_lock(forged, tmp_path, monkeypatch):
    root = tmp_path / "board"

    def verified_while_another_add_wins(self, bundle, manifest, folder):
        other = root / "entries" / entry_name(_entry_of(forged, "1" * 64))
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text(json.dumps({"format": "fairbench-entry/1", "synset_sha256": "1" * 64}))
        return {"verified": True}

    monkeypatch.setattr(Verifier, "verify_opened", verified_while_another_add_wins)
    monkeypatch.setattr(
        "fairbench.board.entries.make_entries", lambda m, v: [_entry_of(forged, m["cells"][0]["synset_sha256"])]
    )
    with pytest.raises(FairbenchError, match="already holds"):
        add_bundle(forged, root, Verifier(verify_settings([])))
    (only,) = (root / "entries").glob("*.json")
    assert json.loads(only.read_text())["synset_sha256"] == "1" * 64


# --- names and text in the rendered leaderboard ---------------------------------------------


HOSTILE_NAME = "a | b <script>alert(1)</script> & 100% $x$ #1 _y_ {z} ~ ^ \\ *bold* [l](http://e)"


def _entries_named(name):
    entries = [json.loads(p.read_text()) for p in sorted((REPO / "leaderboard" / "entries").glob("*.json"))[:2]]
    entries[0]["submission"] = {"name": name}
    return entries


def test_names_are_escaped_for_markdown_html_and_latex(tmp_path):
    frame = measured_frame(_entries_named(HOSTILE_NAME))
    text = markdown(frame, [], tmp_path)
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    (row,) = [line for line in text.splitlines() if "alert" in line]
    assert len(re.split(r"(?<!\\)\|", row)) == len(header.split("|"))  # the name stays in its cell
    assert "<script>" not in text and "<script>alert" not in page(frame, [], tmp_path)
    assert "alert" not in latex(frame, [])  # the LaTeX tables carry no source column
    escaped = _latex_escape(HOSTILE_NAME)
    assert r"\textbackslash{}" in escaped and r"\textasciicircum{}" in escaped and r"100\%" in escaped
    assert r"\$x\$" in escaped and r"\{z\}" in escaped and r"\_y\_" in escaped


@pytest.mark.parametrize("name", [{"a": 1}, ["x"], 3, None], ids=["dict", "list", "int", "none"])
def test_an_entry_name_of_the_wrong_type_does_not_break_render(tmp_path, name):
    frame = measured_frame(_entries_named(name))
    assert "# fairbench leaderboard" in markdown(frame, [], tmp_path)


def test_submit_meta_is_held_to_the_manifest_limits(tmp_path, capsys):
    meta = tmp_path / "meta.yaml"
    meta.write_text("name: {first: x}\n")
    err = one_line_error(capsys, 2, "submit", str(tmp_path), "-o", str(tmp_path / "b"), "--meta", str(meta))
    assert "name" in err and not (tmp_path / "b").exists()


def test_leaderboard_add_unpacks_a_zip_once(forged, tmp_path, monkeypatch):
    unpacked = []
    real = bundle_module._unpack
    monkeypatch.setattr(bundle_module, "_unpack", lambda *args: unpacked.append(1) or real(*args))
    monkeypatch.setattr(Verifier, "verify_opened", lambda self, bundle, manifest, folder: {"verified": False})
    add_bundle(zipped(forged, tmp_path / "b.zip"), tmp_path / "board", Verifier(verify_settings([])))
    assert unpacked == [1]
