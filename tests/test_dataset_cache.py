"""The preprocessing cache: decode once, read back after, rebuild when the source files change."""

import os
import shutil

import numpy as np
import pytest
import torch
from native_files import write_celeba

import fairbench.data.celeba as celeba_module
from fairbench.data import load_dataset
from fairbench.data.cache import cache_dir

CELLS = {(0, 0, 0): 4, (0, 1, 1): 4, (2, 0, 0): 2, (2, 1, 0): 2, (2, 0, 1): 2, (2, 1, 1): 2}


@pytest.fixture
def counted_decodes(monkeypatch):
    calls = []
    decode = celeba_module.decode_images

    def counting(files, *args, **kwargs):
        calls.append(len(files))
        return decode(files, *args, **kwargs)

    monkeypatch.setattr(celeba_module, "decode_images", counting)
    return calls


def entries():
    return sorted((cache_dir() / "datasets").glob("*.npy"))


def test_cache_lives_where_fairbench_cache_points(private_dataset_cache):
    assert cache_dir() == private_dataset_cache


def test_second_load_reads_the_cache(tmp_path, counted_decodes):
    write_celeba(tmp_path, CELLS)
    first = load_dataset("celeba", tmp_path)
    assert counted_decodes == [16] and len(entries()) == 1
    second = load_dataset("celeba", tmp_path)
    assert counted_decodes == [16]
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.test.images, second.test.images)


def test_relabelling_shares_the_entry_resizing_makes_a_new_one(tmp_path, counted_decodes):
    write_celeba(tmp_path, CELLS)
    load_dataset("celeba", tmp_path)
    load_dataset("celeba", tmp_path, {"target": "Male", "group": "Attractive", "seed": 3})
    assert counted_decodes == [16]
    load_dataset("celeba", tmp_path, {"image_size": 32})
    assert counted_decodes == [16, 16] and len(entries()) == 2


def test_a_changed_source_file_is_decoded_again(tmp_path, counted_decodes):
    folder = write_celeba(tmp_path, CELLS)
    before = load_dataset("celeba", tmp_path).train.images[0].clone()
    path = folder / "img_align_celeba" / "000001.jpg"
    shutil.copyfile(folder / "img_align_celeba" / "000009.jpg", path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after = load_dataset("celeba", tmp_path).train.images[0]
    assert len(counted_decodes) == 2 and not torch.equal(before, after)


def test_an_unreadable_entry_is_rebuilt(tmp_path, counted_decodes):
    write_celeba(tmp_path, CELLS)
    expected = load_dataset("celeba", tmp_path).train.images
    entry = entries()[0]
    entry.write_bytes(entry.read_bytes()[:100])
    assert torch.equal(load_dataset("celeba", tmp_path).train.images, expected)
    assert len(counted_decodes) == 2
    assert np.load(entry).shape[0] == 16
