"""``mtt``: matching training trajectories (Cazenavette et al., CVPR 2022).

Each iteration picks an expert trajectory and a start epoch, trains a student from the expert's
parameters there for ``syn_steps`` SGD steps on the synthetic set (with a learnable learning
rate), and asks it to land where the expert was ``expert_epochs`` later:
``‖θ_student − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²``. The unrolled steps are differentiated through,
so the loss moves both the images and the learning rate.

The fair variants live in the experts (``experts.py``): ``mtt+fairdd``, ``mtt+cobra`` (and any mean
variant) match trajectories trained with a group-balanced loss, since the synthetic images carry no
groups. The experts are made by :meth:`TrajectoryMatching.prepare` (``fairbench prepare``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..core.errors import FairbenchError
from ..data import GroupDataset
from .base import DistillContext, Distiller, SyntheticSet
from .experts import balance_weights, check_experts, expert_folder, load_experts, make_experts, missing_experts
from .sampling import ClassSampler


def trajectory_loss(student: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distance from the student's endpoint to the expert's, relative to the expert's own move."""
    return (student - target).pow(2).sum() / (start - target).pow(2).sum()


def unflatten(net: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """A flat parameter vector (``parameters_to_vector`` order) as ``functional_call``'s dict."""
    params, offset = {}, 0
    for name, value in net.named_parameters():
        params[name] = flat[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return params


def unroll(
    net: nn.Module,
    start: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: torch.Tensor,
    steps: int,
    batch: int,
    augment=None,
) -> torch.Tensor:
    """The student's flat parameters after ``steps`` SGD steps from ``start``, differentiable in
    ``images`` and ``lr``; each step takes a random batch of the synthetic set (all of it if ``batch``
    is 0), in one forward pass."""
    flat = start.detach().requires_grad_(True)
    for _ in range(steps):
        x, y = images, labels
        if 0 < batch < len(images):
            pick = torch.randperm(len(images), device=images.device)[:batch]
            x, y = images[pick], labels[pick]
        if augment is not None:
            x = augment(x)
        loss = F.cross_entropy(functional_call(net, unflatten(net, flat), (x,)), y)
        (grad,) = torch.autograd.grad(loss, flat, create_graph=True)
        flat = flat - lr * grad
    return flat


UNROLL_OVERHEAD = 1.4  # create_graph keeps each step's backward intermediates beside its forward's
FIT_SHARE = 0.8  # of the device's memory the unroll may take: the rest for experts, images, the allocator


def activation_bytes(net: nn.Module, image_shape) -> int:
    """Bytes of float32 outputs of ``net``'s leaf modules for one image: what one unrolled SGD
    step keeps per synthetic image, before the double-backward's overhead."""
    sizes = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
        for m in net.modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            net(torch.zeros(1, *image_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return 4 * sum(sizes)


def unroll_bytes(per_image_step: int, images: int, batch: int, steps: int) -> int:
    """Memory the student's unrolled steps keep for the meta-gradient: every step's graph, each
    over ``batch`` images (all of them when batch is 0)."""
    per_step = images if not 0 < batch < images else batch
    return int(UNROLL_OVERHEAD * per_image_step * per_step * steps)


class TrajectoryMatching(Distiller):
    name = "mtt"
    accepts = ("mean",)  # through group-balanced experts
    description = "matching training trajectories of expert networks"

    def balance(self, train: GroupDataset) -> torch.Tensor:
        """The experts' per-sample loss weights for this variant."""
        return balance_weights(self.aggregation, train)

    def expert_folder(self, train: GroupDataset, ctx: DistillContext):
        return expert_folder(ctx.experts_dir, ctx.provenance, self.hparams, self.balance(train))

    @classmethod
    def check_hparams(cls, method_id: str, hp: dict) -> None:
        if hp["expert_epochs"] > hp["trajectory_epochs"]:
            raise FairbenchError(
                f"{method_id}: expert_epochs={hp['expert_epochs']} is beyond the experts' "
                f"trajectory_epochs={hp['trajectory_epochs']}"
            )

    def check_memory(self, ipc: int, image_shape, num_classes: int, make_net, memory: int) -> None:
        """The unroll keeps every student step's graph (about 3 MiB per image per step at 32x32
        for ConvNet): refuse a cell whose ``syn_steps`` x ``batch_syn`` cannot fit, naming the
        largest ``batch_syn`` that does."""
        hp = self.hparams
        per_image = activation_bytes(make_net(), image_shape)
        images = ipc * num_classes
        need = unroll_bytes(per_image, images, hp["batch_syn"], hp["syn_steps"])
        budget = FIT_SHARE * memory
        if need <= budget:
            return
        fits = int(budget // (UNROLL_OVERHEAD * per_image * hp["syn_steps"]))
        advice = f"distill.batch_syn={fits}" if fits > 0 else f"fewer distill.syn_steps than {hp['syn_steps']}"
        raise FairbenchError(
            f"{self.method_id} at ipc={ipc}: its {hp['syn_steps']} unrolled student steps over "
            f"{min(images, hp['batch_syn'] or images)} images need about {need / 2**30:.1f} GiB and the device "
            f"has {memory / 2**30:.1f} GiB; set {advice} (images per student step) to fit"
        )

    def prepare(
        self, train: GroupDataset, ctx: DistillContext, *, stand_in: bool = False, progress=lambda it, **_: it
    ) -> str | None:
        """Train the expert trajectories missing from this cell's cache folder (or, as a stand-in,
        write random walks from one initialisation there)."""
        hp, folder = self.hparams, self.expert_folder(train, ctx)
        if stand_in:
            folder.mkdir(parents=True, exist_ok=True)
            start = torch.nn.utils.parameters_to_vector(ctx.make_net().parameters()).detach()
            for path in missing_experts(folder, hp["num_experts"]):
                steps = 1e-3 * torch.randn(hp["trajectory_epochs"], len(start))
                torch.save(torch.cat([start.unsqueeze(0), start + steps.cumsum(0)]), path)
            return f"{folder}: stand-in trajectories"
        made = make_experts(
            folder, hp["num_experts"], train, self.balance(train), hp, ctx.make_net, ctx.device, progress
        )
        return f"{folder}: {made} expert trajectories trained, {hp['num_experts'] - made} reused"

    def check_ready(self, train: GroupDataset, ctx: DistillContext) -> None:
        check_experts(
            self.expert_folder(train, ctx), self.hparams["num_experts"], self.method_id, ctx.provenance["dataset"]
        )

    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        hp = self.hparams
        self.check_ready(train, ctx)
        experts = load_experts(self.expert_folder(train, ctx), hp["num_experts"], ctx.device)
        net = ctx.fresh_net()
        syn, syn_labels, image_optimizer = self.learnable_images(
            train, ipc, ClassSampler(train.labels, train.num_classes)
        )
        syn_lr = torch.tensor(hp["syn_lr_init"], device=ctx.device, requires_grad=True)
        lr_optimizer = torch.optim.SGD([syn_lr], lr=hp["lr_lr"], momentum=hp["momentum"])
        augment = self.augmentation()
        last_start = min(hp["max_start_epoch"], experts.shape[1] - 1 - hp["expert_epochs"])
        clock = self.timed_iterations(ctx)
        for _ in clock:
            # host-side draws: no device sync
            expert = int(torch.randint(len(experts), ()))
            start_epoch = int(torch.randint(last_start + 1, ()))
            with clock.target.phase():
                start = experts[expert, start_epoch]
                target = experts[expert, start_epoch + hp["expert_epochs"]]
            student = unroll(net, start, syn, syn_labels, syn_lr, hp["syn_steps"], hp["batch_syn"], augment)
            loss = trajectory_loss(student, start, target)
            clock.watch(loss)
            image_optimizer.zero_grad(set_to_none=True)
            lr_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            image_optimizer.step()
            lr_optimizer.step()
        return SyntheticSet(syn.detach(), syn_labels, {"syn_lr": syn_lr.detach().cpu()})
