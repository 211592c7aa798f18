"""CPU tiling of distillers' forward passes must never change what the network computes."""

import pytest
import torch

from fairbench.distill.tiling import CPU_TILE, tiled
from fairbench.models.convnet import convnet


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_tiled_forward_equals_one_call(norm):
    torch.manual_seed(0)
    net = convnet(3, 10, 32, width=8, depth=2, norm=norm).train()
    x = torch.randn(3 * CPU_TILE + 5, 3, 32, 32)
    torch.testing.assert_close(tiled(net.embed, x), net.embed(x))
    blocks = tiled(net.block_outputs, x)
    for tiled_block, whole in zip(blocks, net.block_outputs(x)):
        torch.testing.assert_close(tiled_block, whole)
