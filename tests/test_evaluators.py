"""Every evaluator builds and trains on MNIST-, CIFAR- and CelebA-shaped data; names and misfits fail clearly."""

import pytest
import torch

from fairbench.core.errors import FairbenchError
from fairbench.evaluation.evaluate import check_evaluator, check_fits, evaluator_names, evaluator_spec, make_model
from fairbench.training.augment import DSA
from fairbench.training.train import batch_slices, train_classifier

# Tiny widths keep the whole matrix to seconds; timm's test_* models are its own miniatures.
EVALUATORS = {
    "convnet": {"width": 8},
    "convnet-d4": {"width": 8},
    "resnet18": {"width": 4},
    "resnet18-bn": {"width": 4},
    "vgg11": {"width": 4},
    "alexnet": {"width": 8},
    "mlp": {"width": 8},
    "timm:test_resnet": {},
    "timm:test_vit": {},
}
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64)]
STEP = dict(epochs=1, lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=4)


def tiny(name):
    return evaluator_spec(name, {}, EVALUATORS[name])


def test_every_registry_evaluator_is_covered():
    fixed = [n for n in evaluator_names() if not n.startswith("timm:")]
    assert sorted(fixed) == sorted(n for n in EVALUATORS if not n.startswith("timm:"))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", EVALUATORS)
def test_builds_and_trains_a_step(name, shape):
    spec = tiny(name)
    check_fits(spec, shape, 10)
    torch.manual_seed(0)
    model = make_model(spec, shape, 10)
    x, y = torch.randn(6, *shape), torch.arange(6) % 10
    before = [p.detach().clone() for p in model.parameters()]
    train_classifier(model, x, y, augment=DSA(), **STEP)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    assert model(x).shape == (6, 10) and model.embed(x).shape[0] == 6


@pytest.mark.parametrize("name", ["resnet18-bn", "timm:test_resnet"])
def test_batch_norm_on_ipc_1_and_per_class_batches(name):
    """IPC 1: ten images, a batch size that leaves one over, and a single image in train mode."""
    model = make_model(tiny(name), (3, 32, 32), 10)
    x, y = torch.randn(10, 3, 32, 32), torch.arange(10)
    train_classifier(model, x, y, **dict(STEP, batch_size=3, epochs=2))
    model.train()
    assert model(x[:1]).shape == (1, 10)


def test_a_last_batch_of_one_joins_the_one_before():
    assert batch_slices(10, 3) == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert batch_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert batch_slices(1, 4) == [slice(0, 1)]


@pytest.mark.parametrize("size", [28, 32])
def test_timm_resnet18_keeps_a_2x2_map_where_its_stem_would_leave_1x1(size):
    model = make_model(evaluator_spec("timm:resnet18"), (3, size, size), 10)
    features = model.model.forward_features(model._resize(torch.randn(1, 3, size, size)))
    assert model.input_size == 64 and features.shape[-2:] == (2, 2)


def test_timm_vgg11_takes_28x28_once_resized():
    check_fits(evaluator_spec("timm:vgg11"), (1, 28, 28), 10)
    with pytest.raises(FairbenchError, match="cannot take 1x28x28"):  # at its own 28x28, its last pool fails
        check_fits(evaluator_spec("timm:vgg11", {}, {"min_feature_size": 0}), (1, 28, 28), 10)


def test_timm_min_feature_size_is_a_model_setting():
    model = make_model(evaluator_spec("timm:test_resnet", {}, {"min_feature_size": 3}), (3, 32, 32), 10)
    assert model.input_size == 3 * 32


@pytest.mark.parametrize(
    "name,fragments",
    [
        ("timm:resnet1800", ["unknown timm model 'resnet1800'", "resnet18"]),
        ("timm", ["unknown evaluator 'timm'", "timm:<model>", "resnet18-bn"]),
        ("resnet", ["unknown evaluator 'resnet'", "resnet18"]),
    ],
)
def test_bad_names_are_clear(name, fragments):
    with pytest.raises(FairbenchError) as error:
        check_evaluator(name)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_an_evaluator_that_cannot_take_the_images_is_refused():
    # Inception's stem and reductions need more than the 64x64 that 28x28 is resized to.
    with pytest.raises(FairbenchError, match=r"'timm:inception_v3' cannot take 3x28x28 images: .*min_feature_size"):
        check_fits(evaluator_spec("timm:inception_v3"), (3, 28, 28), 10)
