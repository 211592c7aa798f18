import pytest
import torch

from fairbench.training.augment import DSA, TRANSFORMS


@pytest.mark.parametrize("name", TRANSFORMS)
def test_same_pair_same_transform_for_real_and_synthetic(name):
    dsa = DSA(strategy=name)
    torch.manual_seed(1)
    image = torch.randn(1, 3, 32, 32)
    real = torch.cat([image, torch.randn(1, 3, 32, 32), image])
    syn = image.repeat(2, 1, 1, 1)
    real_pairs, syn_pairs = torch.tensor([0, 0, 1]), torch.tensor([0, 1])
    params = dsa.sample(2, 32, "cpu")
    real_out, syn_out = dsa.apply(real, params, real_pairs), dsa.apply(syn, params, syn_pairs)
    torch.testing.assert_close(real_out[0], syn_out[0])  # class 0 real == class 0 synthetic
    torch.testing.assert_close(real_out[2], syn_out[1])  # class 1 likewise


@pytest.mark.parametrize("name", TRANSFORMS)
def test_reproducible_under_a_seed(name):
    dsa = DSA(strategy=name)
    x = torch.randn(4, 3, 32, 32)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(dsa(x))
    torch.testing.assert_close(outs[0], outs[1])


def test_different_pairs_get_different_draws():
    dsa = DSA(strategy="scale")
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32).repeat(2, 1, 1, 1)
    out = dsa.apply(x, dsa.sample(2, 32, "cpu"), torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("name", TRANSFORMS)
def test_differentiable(name):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    DSA(strategy=name)(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_crop_shifts_by_whole_pixels_with_zero_fill():
    dsa = DSA(strategy="crop")
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = dsa.apply(x, {"name": "crop", "pad": 1, "shift": torch.tensor([[1, 0]])}, torch.tensor([0]))
    torch.testing.assert_close(out[0, 0, :3], x[0, 0, 1:])
    assert (out[0, 0, 3] == 0).all()


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="unknown DSA"):
        DSA(strategy="color_blur")


def test_each_class_draws_its_own_transform_and_shares_it_with_its_synthetic_images():
    """The reference calls DiffAugment once per class with one seed for real and synthetic: each
    class its own transform type, real and synthetic of a class on the same draw."""
    dsa = DSA()
    torch.manual_seed(0)
    params = dsa.sample(40, 16, "cpu")
    assert len(set(params["choice"].tolist())) > 1  # not one transform for every class
    classes = torch.arange(40)
    real = torch.randn(40, 3, 16, 16)
    torch.testing.assert_close(
        dsa.apply(real, params, classes), dsa.apply(real.flip(0), params, classes.flip(0)).flip(0)
    )
    # a class's images all get its transform: class 5's two copies come out identical
    pair = dsa.apply(real[5:6].repeat(2, 1, 1, 1), params, torch.tensor([5, 5]))
    torch.testing.assert_close(pair[0], pair[1])


@pytest.mark.parametrize(
    "name,key,value", [("scale", "factors", torch.tensor([[1.3, 0.8]])), ("rotate", "angle", torch.tensor([0.3]))]
)
def test_geometric_transforms_resample_like_the_reference(name, key, value):
    """The reference calls affine_grid / grid_sample with PyTorch's default align_corners=False."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 8)
    out = DSA().apply(x, {"name": name, key: value}, torch.tensor([0]))
    theta = torch.zeros(1, 2, 3)
    if name == "scale":
        theta[0, 0, 0], theta[0, 1, 1] = value[0]
    else:
        c, s = torch.cos(value[0]), torch.sin(value[0])
        theta[0] = torch.tensor([[c, s, 0.0], [-s, c, 0.0]])
    expected = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    torch.testing.assert_close(out, expected)


def grouping_case(seed=0, pairs=12, per_pair=(3, 1, 2)):
    torch.manual_seed(seed)
    sizes = [per_pair[i % len(per_pair)] for i in range(pairs)]
    dsa = DSA()
    params = dsa.sample(pairs, 16, "cpu")
    owners = torch.arange(pairs).repeat_interleave(torch.tensor(sizes))
    return dsa, params, sizes, owners, torch.randn(sum(sizes), 3, 16, 16)


def test_grouping_by_transform_equals_transforming_each_sample_alone():
    """apply gathers each transform's samples, runs it once and restores the order: every output
    sample is bit for bit the sample transformed alone by its pair's draw, with or without sizes."""
    dsa, params, sizes, owners, x = grouping_case()
    assert len(set(params["choice"][owners.numpy()].tolist())) >= 4  # the grouping is exercised
    grouped = dsa.apply(x, params, owners, sizes)
    alone = torch.cat([dsa.apply(x[i : i + 1], params, owners[i : i + 1]) for i in range(len(x))])
    assert torch.equal(grouped, alone)
    assert torch.equal(dsa.apply(x, params, owners), grouped)


def test_gradients_through_the_grouping_equal_each_samples_own():
    dsa, params, sizes, owners, x = grouping_case(seed=1)
    weights = torch.randn_like(x)
    x_grouped = x.clone().requires_grad_(True)
    (dsa.apply(x_grouped, params, owners, sizes) * weights).sum().backward()
    x_alone = x.clone().requires_grad_(True)
    for i in range(len(x)):
        (dsa.apply(x_alone[i : i + 1], params, owners[i : i + 1]) * weights[i : i + 1]).sum().backward()
    assert torch.equal(x_grouped.grad, x_alone.grad)


def test_sizes_that_do_not_describe_the_batch_are_refused():
    dsa, params, sizes, owners, x = grouping_case()
    with pytest.raises(ValueError, match="do not describe"):
        dsa.apply(x, params, owners, sizes[:-1])
    with pytest.raises(ValueError, match="do not describe"):
        dsa.apply(x[1:], params, owners[1:], sizes)


def test_float64_images_are_resampled_on_a_float64_grid():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    params = DSA(strategy="rotate").sample(2, 8, "cpu", dtype=torch.float64)
    assert DSA(strategy="rotate").apply(x, params, torch.tensor([0, 1]), [1, 1]).dtype == torch.float64


@pytest.mark.parametrize("name", TRANSFORMS)
def test_non_square_images_match_each_sample_alone(name):
    torch.manual_seed(3)
    dsa = DSA(strategy=name)
    params = dsa.sample(3, (16, 12), "cpu")
    x, owners = torch.randn(6, 3, 16, 12), torch.arange(3).repeat_interleave(2)
    out = dsa.apply(x, params, owners, [2, 2, 2])
    assert out.shape == x.shape
    assert torch.equal(out, torch.cat([dsa.apply(x[i : i + 1], params, owners[i : i + 1]) for i in range(6)]))


def test_draws_for_another_image_size_are_refused():
    params = DSA().sample(2, 16, "cpu")
    with pytest.raises(ValueError, match="cannot transform"):
        DSA().apply(torch.randn(2, 3, 32, 32), params, torch.tensor([0, 1]), [1, 1])


def static_case(seed, pairs, strategy=DSA.strategy, size=(16, 12)):
    """A grouped and a ``static`` draw from the same generator state, and the state after each."""
    dsa = DSA(strategy=strategy)
    torch.manual_seed(seed)
    grouped, after_grouped = dsa.sample(pairs, size, "cpu"), torch.get_rng_state()
    torch.manual_seed(seed)
    static, after_static = dsa.sample(pairs, size, "cpu", static=True), torch.get_rng_state()
    assert torch.equal(after_grouped, after_static)  # the fillers draw from a generator of their own
    return dsa, grouped, static


@pytest.mark.parametrize("seed,pairs", [(0, 10), (1, 2), (2, 3), (3, 10)])
def test_the_static_path_is_the_grouped_path_bit_for_bit(seed, pairs):
    """In a CUDA graph every kind runs on every sample and each keeps its own kind's result: the
    outputs and the images' gradients are the grouped path's, bit for bit, on draws that choose
    all kinds or only some."""
    dsa, grouped, static = static_case(seed, pairs)
    sizes = [1 + (i * 7) % 4 for i in range(pairs)]
    owners = torch.arange(pairs).repeat_interleave(torch.tensor(sizes))
    x = torch.randn(sum(sizes), 3, 16, 12)
    weights = torch.randn_like(x)
    x_grouped, x_static = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_grouped = dsa.apply(x_grouped, grouped, owners, sizes)
    tables = [static["tables"][k] for k in sorted(static["tables"])]
    out_static = dsa.apply_static(x_static, tables, dsa.static_index(static, sizes, "cpu"))
    assert torch.equal(out_static, out_grouped)
    (out_grouped * weights).sum().backward()
    (out_static * weights).sum().backward()
    assert torch.equal(x_static.grad, x_grouped.grad)


def test_static_tables_have_the_same_shapes_whatever_the_draw_chose():
    """A CUDA graph needs the same input shapes every step: one table per kind of the strategy,
    the grid's with a block for scale and one for rotate, however many transforms were chosen."""
    shapes = set()
    for seed in range(12):
        _, grouped, static = static_case(seed, 2)
        assert set(static["tables"]) == set(range(5))
        shapes.add(tuple((k, tuple(t["table"].shape)) for k, t in sorted(static["tables"].items())))
        assert len(grouped["tables"]) < 5  # 2 pairs choose at most 2 of the 6 transforms
    assert len(shapes) == 1
    assert dict(next(iter(shapes)))[4] == (4, 16, 12, 2)  # grid: 2 blocks of 2 pairs
