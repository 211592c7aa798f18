"""No host sync inside a distillation step, for every base x variant: one step of each runs under
a torch function mode that fails on ``.item()``, ``.cpu()``, ``.tolist()``, ``bool(tensor)`` and
``torch.bincount`` (each makes a GPU wait for the host). The clock's divergence check, once per
``check_every`` iterations, is the one sync allowed and is left out of the guard."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from fairbench.distill import BASES, VARIANTS, build_distiller
from fairbench.distill.base import IterationClock
from fairbench.testing import _context, _tiny_hparams, tiny_splits

SYNCS = {
    torch.Tensor.item,
    torch.Tensor.cpu,
    torch.Tensor.tolist,
    torch.Tensor.__bool__,
    torch.bincount,
    torch.Tensor.bincount,
}


class HostSyncGuard(TorchFunctionMode):
    """Raises on a host sync while armed (inside a step)."""

    armed = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.armed and func in SYNCS:
            raise AssertionError(f"host sync inside a step: {getattr(func, '__qualname__', func)}")
        return func(*args, **(kwargs or {}))


def armed_steps(guard):
    """A progress wrapper that arms the guard while the distiller runs each step's body."""

    def progress(iterations, **_):
        for it in iterations:
            guard.armed = True
            try:
                yield it
            finally:
                guard.armed = False

    return progress


def methods():
    for base in BASES.names():
        cls = BASES.get(base)
        for variant in dict.fromkeys(["vanilla", *VARIANTS.names()]):
            if variant != "vanilla" and not cls.supports(variant):
                continue
            yield base if variant == "vanilla" else f"{base}+{variant}"


def test_the_guard_catches_each_sync():
    guard = HostSyncGuard()
    x = torch.ones(3)
    with guard:
        guard.armed = True
        for call in (lambda: x.sum().item(), lambda: x.cpu(), lambda: x.tolist(), lambda: bool(x[0])):
            with pytest.raises(AssertionError, match="host sync"):
                call()
        with pytest.raises(AssertionError, match="host sync"):
            torch.bincount(x.long())
        guard.armed = False


@pytest.mark.parametrize("method_id", list(methods()))
def test_one_step_has_no_host_sync(method_id, tmp_path, monkeypatch):
    train, _ = tiny_splits()
    hparams = {**_tiny_hparams(method_id, 2, None), "iterations": 2}
    distiller = build_distiller(method_id, hparams)
    ctx = _context(hparams, train, torch.device("cpu"), tmp_path)
    distiller.prepare(train, ctx, stand_in=True)
    guard = HostSyncGuard()
    ctx.progress = armed_steps(guard)
    check = IterationClock._check

    def unguarded_check(clock, iteration):  # the one sync per check interval, outside the steps
        armed, guard.armed = guard.armed, False
        try:
            check(clock, iteration)
        finally:
            guard.armed = armed

    monkeypatch.setattr(IterationClock, "_check", unguarded_check)
    torch.manual_seed(0)
    with guard:
        distiller.distill(train, 2, ctx)
