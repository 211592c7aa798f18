import pytest
import torch

from fairbench.core.errors import FairbenchError
from fairbench.distill.sampling import ClassSampler
from fairbench.models import build_model


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (3, 64)])
def test_convnet_shapes(channels, size):
    net = build_model("convnet", channels, 10, size, width=16, depth=3)
    x = torch.randn(2, channels, size, size)
    assert net(x).shape == (2, 10)
    assert net.embed(x).shape == (2, net.embed_dim)
    if size == 28:  # padded to 32 by the first convolution, as in the DC code
        assert net.embed_dim == 16 * 4 * 4


def test_instance_norm_keeps_samples_independent():
    torch.manual_seed(0)
    net = build_model("convnet", 3, 10, 32, width=8)
    x = torch.randn(5, 3, 32, 32)
    torch.testing.assert_close(net.embed(x)[:2], net.embed(x[:2]))


def test_sampler_draws_each_class_without_replacement():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0, 2, 1, 1])
    sampler = ClassSampler(labels, 3)
    torch.manual_seed(0)
    index = sampler.sample(3)
    assert labels[index].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len(set(index.tolist())) == 9
    assert len(sampler.sample(100, equal=True)) == 9  # equal=True: cut to the smallest class


def test_real_batch_takes_up_to_per_class_of_each_class():
    # classes of 2, 5 and 3 images: the reference's get_images(c, 4) gives 2, 4 and 3
    labels = torch.tensor([1, 0, 1, 2, 1, 1, 2, 0, 1, 2])
    sampler = ClassSampler(labels, 3)
    torch.manual_seed(0)
    index = sampler.sample(4)
    assert labels[index].tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert len(set(index.tolist())) == 9
    assert sorted(sampler.sample(100).tolist()) == list(range(10))


@pytest.mark.parametrize("per_class,equal", [(5, False), (5, True), (2, False), (9, False)])
def test_sizes_say_on_the_host_how_many_of_each_class_a_batch_holds(per_class, equal):
    """DSA groups a batch by transform on the host from these sizes, never reading labels back."""
    labels = torch.tensor([0] * 6 + [1] * 3 + [2] * 8)
    sampler = ClassSampler(labels, 3)
    batch = labels[sampler.sample(per_class, equal=equal)]
    assert sampler.sizes(per_class, equal=equal) == torch.bincount(batch, minlength=3).tolist()


def test_impossible_ipc_is_a_clear_error():
    sampler = ClassSampler(torch.tensor([0, 0, 1]), 2)
    with pytest.raises(FairbenchError, match="ipc=2 is impossible.*only 1"):
        sampler.sample_exact(2)


@pytest.mark.parametrize("method", ["dm", "dm+cobra", "dc+fairdd", "cafe+cobra"])
def test_bases_distill_from_unequal_real_batches(method):
    """Classes of 6 and 3 images with real_batch 5: the step sees 5 + 3 real images, and every
    base takes the uneven class-major batch."""
    from fairbench.data import GroupDataset
    from fairbench.distill import build_distiller, method_hparams
    from fairbench.distill.base import DistillContext

    torch.manual_seed(0)
    labels = torch.tensor([0] * 6 + [1] * 3)
    train = GroupDataset(
        images=torch.randint(0, 256, (9, 3, 8, 8), dtype=torch.uint8),
        labels=labels,
        groups=torch.tensor([0, 1, 0, 0, 1, 0, 1, 0, 1]),
        class_names=["a", "b"],
        group_names=["x", "y"],
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    hparams = method_hparams(
        method, "", 1, {"iterations": 2, "real_batch": 5, "outer_loop": 2, "inner_loop": 1, "warmup_epochs": 1}
    )
    ctx = DistillContext(device=torch.device("cpu"), make_net=lambda: build_model("convnet", 3, 2, 8, width=4, depth=2))
    syn = build_distiller(method, hparams).distill(train, 1, ctx)
    assert syn.images.shape[0] == 2 and torch.isfinite(syn.images).all()
