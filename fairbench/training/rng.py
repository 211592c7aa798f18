"""The random streams of one training run, owned by that run.

Shuffling and augmentation draw only from a run's own streams, so a run draws the same numbers
whether it trains alone or as one member of an ensemble trained in lockstep with others.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainingRNG:
    host: torch.Generator  # choices taken in Python (which DSA transform): no device sync
    device: torch.Generator  # tensors drawn on the training device (permutations, DSA parameters)

    @classmethod
    def continuing_global(cls, seed: int, device) -> TrainingRNG:
        """Streams that pick up where ``torch.manual_seed(seed)`` and a model's initialisation left
        the global generators; call it right after building the model.

        Evaluation trained from the global generators before runs had their own streams; continuing
        them keeps every evaluation number of those versions (bit for bit on the CPU).
        """
        host = torch.Generator()
        host.set_state(torch.get_rng_state())
        device = torch.device(device)
        if device.type == "cpu":
            return cls(host, host)
        # Initialisation runs on the CPU, so the device generator is still where the seed put it.
        return cls(host, torch.Generator(device).manual_seed(seed))
