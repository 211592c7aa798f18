"""CelebA, UTKFace and BFFHQ read from tiny copies of their release files."""

import logging

import numpy as np
import pandas as pd
import pytest
from native_files import CELEBA_ATTRIBUTES, write_bffhq, write_celeba, write_utkface
from PIL import Image

from fairbench.core.errors import DataNotFoundError, FairbenchError
from fairbench.data import load_dataset

# (partition, attractive, male) → images; partition 1 (validation) is never used.
CELEBA_CELLS = {
    (0, 0, 0): 5,
    (0, 1, 0): 3,
    (0, 0, 1): 4,
    (0, 1, 1): 2,
    (1, 1, 1): 3,
    (2, 0, 0): 4,
    (2, 1, 0): 3,
    (2, 0, 1): 2,
    (2, 1, 1): 5,
}


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    write_celeba(root, CELEBA_CELLS)
    return root


def test_celeba_train_is_the_train_partition_and_test_is_balanced(celeba_root):
    splits = load_dataset("celeba", celeba_root)
    assert splits.train.class_names == ["not Attractive", "Attractive"]
    assert splits.train.group_names == ["not Male", "Male"]
    train = [[CELEBA_CELLS[(0, a, m)] for m in (0, 1)] for a in (0, 1)]
    assert splits.train.counts().tolist() == train
    smallest = min(n for (p, _, _), n in CELEBA_CELLS.items() if p == 2)
    assert splits.test.counts().tolist() == [[smallest] * 2] * 2
    assert splits.train.image_shape == (3, 64, 64)


def test_celeba_other_attributes_follow_the_attribute_file(celeba_root):
    splits = load_dataset("celeba", celeba_root, {"target": "Blond_Hair", "group": "Young", "image_size": 32})
    table = pd.read_csv(
        celeba_root / "celeba" / "list_attr_celeba.txt",
        sep=r"\s+",
        skiprows=2,
        header=None,
        names=["file", *CELEBA_ATTRIBUTES],
        index_col=0,
    )
    partition = np.loadtxt(celeba_root / "celeba" / "list_eval_partition.txt", dtype=str)[:, 1].astype(int)
    train = table[partition == 0]
    expected = [
        [int((((train.Blond_Hair > 0) == bool(b)) & ((train.Young > 0) == bool(y))).sum()) for y in (0, 1)]
        for b in (0, 1)
    ]
    assert splits.train.counts().tolist() == expected
    assert splits.train.image_shape == (3, 32, 32)
    counts = splits.test.counts()
    assert counts.min() == counts.max()


def test_celeba_center_crops_178_then_resizes(tmp_path):
    folder = write_celeba(tmp_path, {(0, 0, 0): 1, (2, 0, 0): 1, (2, 1, 0): 1, (2, 0, 1): 1, (2, 1, 1): 1})
    image = np.zeros((218, 178, 3), dtype=np.uint8)  # rows outside the centered 178 square are red
    image[:, :, 0] = 255
    image[20:198] = [0, 0, 200]
    Image.fromarray(image).save(folder / "img_align_celeba" / "000001.jpg", quality=100)
    pixels = load_dataset("celeba", tmp_path).train.images[0]
    assert pixels[2].float().mean() > 190 and pixels[0].float().max() < 40


def test_celeba_unknown_attribute_lists_the_valid_ones(celeba_root):
    with pytest.raises(FairbenchError, match="unknown CelebA target attribute 'Blond'.*Blond_Hair, Male"):
        load_dataset("celeba", celeba_root, {"target": "Blond"})
    with pytest.raises(FairbenchError, match="both 'Male'"):
        load_dataset("celeba", celeba_root, {"target": "Male"})


@pytest.mark.parametrize(
    "damage,message",
    [
        (
            lambda f: (f / "list_attr_celeba.txt").write_text(
                "\n".join((f / "list_attr_celeba.txt").read_text().splitlines()[:-3]) + "\n"
            ),
            "list_attr_celeba.txt: truncated",
        ),
        (
            lambda f: (f / "list_eval_partition.txt").write_text(
                "\n".join((f / "list_eval_partition.txt").read_text().splitlines()[:-1]) + "\n"
            ),
            "list_eval_partition.txt: truncated or malformed: no partition for 1 images",
        ),
        (
            lambda f: (f / "img_align_celeba" / "000002.jpg").write_bytes(b"\xff\xd8\xff not a jpeg"),
            "000002.jpg: cannot decode image",
        ),
        (lambda f: (f / "img_align_celeba" / "000003.jpg").unlink(), "000003.jpg not found"),
        (lambda f: (f / "list_eval_partition.txt").unlink(), "list_eval_partition.txt not found.*mmlab"),
    ],
)
def test_celeba_damage_is_named(tmp_path, damage, message):
    folder = write_celeba(tmp_path, {(0, 0, 0): 3, (2, 0, 0): 1, (2, 1, 0): 1, (2, 0, 1): 1, (2, 1, 1): 1})
    damage(folder)
    with pytest.raises(FairbenchError, match=message):
        load_dataset("celeba", tmp_path)


def test_missing_data_root_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match=f"{tmp_path / 'nope'} does not exist"):
        load_dataset("celeba", tmp_path / "nope")


# (age, gender, race) → images: every age bin and race; race 4 ("Others") must be dropped.
UTK_PEOPLE = [(age, gender, race) for age in (3, 19, 20, 39, 40, 77) for gender in (0, 1) for race in range(5)]
UTK_PEOPLE += [(25, 0, 0)] * 3 + [(50, 1, 2), (61, 0, 4)]


def expected_utk_cells(by):
    counts = np.zeros((3, 4 if by == "race" else 2), dtype=int)
    for age, gender, race in UTK_PEOPLE:
        if race != 4:
            counts[0 if age < 20 else 1 if age < 40 else 2, race if by == "race" else gender] += 1
    return counts


@pytest.mark.parametrize("by", ["race", "gender"])
def test_utkface_age_bins_groups_and_others_dropped(tmp_path, caplog, by):
    write_utkface(tmp_path, UTK_PEOPLE, extra_names=("39_1_20170116174525125.jpg.chip.jpg", "notes.txt"))
    with caplog.at_level(logging.WARNING):
        splits = load_dataset("utkface", tmp_path, {"group": by, "test_per_cell": 1})
    assert "skipped 2 files" in caplog.text and "39_1_20170116174525125" in caplog.text
    assert splits.train.class_names == ["0-19", "20-39", "40+"]
    assert splits.train.group_names == (["White", "Black", "Asian", "Indian"] if by == "race" else ["male", "female"])
    total = expected_utk_cells(by)
    assert (splits.test.counts() == 1).all()
    assert (splits.train.counts() + splits.test.counts()).tolist() == total.tolist()


def test_utkface_test_cells_shrink_to_the_smallest(tmp_path):
    write_utkface(tmp_path, UTK_PEOPLE)
    splits = load_dataset("utkface", tmp_path)  # test_per_cell 100 > every cell
    smallest = int(expected_utk_cells("race").min())
    assert (splits.test.counts() == smallest).all()
    assert len(splits.train) == expected_utk_cells("race").sum() - 12 * smallest


def test_utkface_unknown_group_lists_choices(tmp_path):
    write_utkface(tmp_path, UTK_PEOPLE[:3])
    with pytest.raises(FairbenchError, match="unknown UTKFace group 'age'; choose from: gender, race"):
        load_dataset("utkface", tmp_path, {"group": "age"})


BFFHQ_ALIGN = {(0, 0): 7, (1, 1): 6}
BFFHQ_CONFLICT = {(0, 1): 1, (1, 0): 2}
BFFHQ_TEST = {(0, 0): 2, (0, 1): 3, (1, 0): 2, (1, 1): 1}


def test_bffhq_labels_come_from_the_names(tmp_path):
    write_bffhq(tmp_path, BFFHQ_ALIGN, BFFHQ_CONFLICT, BFFHQ_TEST)
    splits = load_dataset("bffhq", tmp_path)
    train = {**BFFHQ_ALIGN, **BFFHQ_CONFLICT}
    assert splits.train.counts().tolist() == [[train.get((t, g), 0) for g in (0, 1)] for t in (0, 1)]
    assert splits.test.counts().tolist() == [[BFFHQ_TEST[(t, g)] for g in (0, 1)] for t in (0, 1)]
    assert splits.train.image_shape == (3, 64, 64)
    assert splits.train.class_names == ["young", "old"] and splits.train.group_names == ["female", "male"]


def test_bffhq_bad_name_and_missing_split(tmp_path):
    folder = write_bffhq(tmp_path, BFFHQ_ALIGN, BFFHQ_CONFLICT, BFFHQ_TEST)
    stray = folder / "test" / "face_2_0.png"
    stray.write_bytes((next((folder / "test").glob("*.png"))).read_bytes())
    with pytest.raises(FairbenchError, match="face_2_0.png: a BFFHQ file name must end"):
        load_dataset("bffhq", tmp_path)
    stray.unlink()
    for png in (folder / "0.5pct" / "conflict").glob("*/*.png"):
        png.unlink()
    with pytest.raises(DataNotFoundError, match=r"conflict/\*/\*.png not found.*Learning-Debiased-Disentangled"):
        load_dataset("bffhq", tmp_path)
