"""One distillation iteration of DM, and what FairDD and COBRA cost on top of it.

The limits are ratios over DM's own iteration in this process, with margin over what was measured
(docs/regress.md): FairDD adds only index_add_ bookkeeping; COBRA's DM also warm-starts each step's
network for ``warmup_epochs`` (10 at IPC 10) on the synthetic set.
"""

import pytest
from sizes import ROUNDS

from fairbench.distill import build_distiller, method_hparams

IPC = 10
LIMITS = {"dm+fairdd": 1.5, "dm+cobra": 6.0}


def one_iteration(method, train, context):
    hparams = method_hparams(method, "", IPC, {"iterations": 1, "real_batch": 32})
    distiller = build_distiller(method, hparams)
    return lambda: distiller.distill(train, IPC, context)


def test_dm_iteration(benchmark, train, context):
    benchmark.pedantic(one_iteration("dm", train, context), rounds=ROUNDS, warmup_rounds=1)


@pytest.mark.parametrize("method", sorted(LIMITS))
def test_variant_iteration_over_dm(benchmark, method, train, context, side_by_side):
    variant = one_iteration(method, train, context)
    ratio = side_by_side(variant, one_iteration("dm", train, context), repeats=3)
    benchmark.extra_info["over_dm"] = ratio
    benchmark.pedantic(variant, rounds=ROUNDS, warmup_rounds=1)
    assert ratio < LIMITS[method], f"{method} iteration {ratio:.2f}x DM's (limit {LIMITS[method]})"
