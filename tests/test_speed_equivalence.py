"""The speed work changes no result: training with the multi-tensor (foreach) SGD step gives the
same network and the same dm+cobra synthetic set, bit for bit, as the per-parameter loop."""

import functools

import torch

from fairbench.distill import DistillContext, build_distiller, method_hparams
from fairbench.models import build_model
from fairbench.run.bench import synthetic_dataset
from fairbench.training.train import train_classifier


def per_parameter_sgd(monkeypatch):
    """Make every SGD built from now on take the per-parameter loop (PyTorch's CPU default)."""
    monkeypatch.setattr(torch.optim, "SGD", functools.partial(torch.optim.SGD, foreach=False))


def test_evaluator_training_is_bit_for_bit(monkeypatch):
    torch.manual_seed(0)
    images, labels = torch.randn(12, 3, 16, 16), torch.arange(3).repeat(4)

    def trained():
        torch.manual_seed(1)
        net = build_model("convnet", 3, 3, 16, width=8)
        settings = dict(epochs=3, lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=5)
        return train_classifier(net, images, labels, **settings).state_dict()

    new = trained()
    per_parameter_sgd(monkeypatch)
    old = trained()
    assert all(torch.equal(new[k], old[k]) for k in new)


def test_cobra_warm_start_is_bit_for_bit(monkeypatch):
    torch.manual_seed(2)
    train = synthetic_dataset(3, 2, 24, 16, torch.device("cpu"))
    hp = {**method_hparams("dm+cobra", "", 2), "iterations": 2, "real_batch": 20, "warmup_epochs": 2}

    def distilled():
        torch.manual_seed(3)
        ctx = DistillContext(device=torch.device("cpu"), make_net=lambda: build_model("convnet", 3, 3, 16, width=8))
        return build_distiller("dm+cobra", hp).distill(train, 2, ctx).images

    new = distilled()
    per_parameter_sgd(monkeypatch)
    assert torch.equal(new, distilled())
