"""Corrupt or unusable data: one line naming the file or the setting, exit 2, nothing computed."""

import os

import numpy as np
import pytest
from conftest import refuse_lookups_under
from native_files import write_idx, write_mnist, write_utkface
from test_cli import assert_clean_error

from fairbench.cli import main
from fairbench.core.errors import FairbenchError
from fairbench.data import load_dataset
from fairbench.data.cache import cached_images, entry_path


def test_label_out_of_range_in_an_idx_file_names_the_file(tmp_path, fairbench_cli):
    raw = write_mnist(tmp_path, per_class_train=2, per_class_test=1)
    labels = np.repeat(np.arange(10), 2)
    labels[3] = 200
    write_idx(raw / "train-labels-idx1-ubyte", labels, False)
    proc = fairbench_cli("data", "cmnist", f"data_root={tmp_path}")
    assert_clean_error(proc, "train-labels-idx1-ubyte: label 200 is out of range for 10 classes")


def test_an_empty_split_is_an_error_from_the_loader(tmp_path):
    # one image per (age bin, race) cell: the balanced test split takes them all, train is empty
    write_utkface(tmp_path, [(age, 0, race) for age in (5, 25, 50) for race in range(4)])
    with pytest.raises(
        FairbenchError, match="dataset 'utkface': the train split of .* is empty with .*test_per_cell=3"
    ):
        load_dataset("utkface", tmp_path, {"test_per_cell": 3, "image_size": 8})


def test_an_unreadable_cache_entry_is_named_set_aside_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FAIRBENCH_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    decoded = np.arange(12, dtype=np.uint8).reshape(1, 3, 2, 2)
    np.testing.assert_array_equal(cached_images("toy", {"size": 2}, [str(source)], lambda: decoded, ""), decoded)
    path = entry_path("toy", {"size": 2}, [str(source)], "")
    path.write_bytes(path.read_bytes()[:20])  # a truncated entry
    with caplog.at_level("WARNING"):
        again = cached_images("toy", {"size": 2}, [str(source)], lambda: decoded + 1, "")
    np.testing.assert_array_equal(again, decoded + 1)  # recomputed, not a traceback
    assert str(path) in caplog.text
    aside = list(path.parent.glob(f"{path.name}.unreadable*"))
    assert len(aside) == 1 and aside[0].stat().st_size == 20  # kept for a look, out of the way
    np.testing.assert_array_equal(np.load(path), decoded + 1)  # and the entry is whole again


def test_a_data_root_this_user_cannot_read_is_one_line(tmp_path, monkeypatch, capsys):
    """A folder of mode 000: a user's loader gets EACCES where it looks. Root ignores mode bits, so
    under root the same refusal is raised by ``Path.is_file`` for paths inside that folder."""
    raw = write_mnist(tmp_path, per_class_train=2, per_class_test=1)
    raw.chmod(0)
    try:
        if os.geteuid() == 0:
            refuse_lookups_under(monkeypatch, raw, "is_file")
        assert main(["data", "cmnist", f"data_root={tmp_path}"]) == 2
    finally:
        raw.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"fairbench: error: dataset 'cmnist': cannot read {raw}/")
    assert err.rstrip().endswith(f"permission denied; data_root={tmp_path} must be a folder this user can read")
