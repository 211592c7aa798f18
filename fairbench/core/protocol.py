"""A cell's protocol: what must be equal for two measurements to share a leaderboard row.

The protocol is the resolved cell configuration (dataset and its parameters, method and its
hyperparameters, the distiller's network, IPC, the evaluator and its training settings, the suite)
minus what only repeats a measurement: the distillation seed and the number of evaluation runs.
Its id is a short hash, printed as a column so rows of different protocols never pool silently.
"""

from __future__ import annotations

import hashlib
import json

REPEAT_KEYS = ("seed", "num_eval")


def digest(payload, length: int = 16) -> str:
    """A stable hex digest of a JSON-able payload (key order does not matter)."""
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:length]


def protocol_of(resolved: dict) -> dict:
    return {k: v for k, v in resolved.items() if k not in REPEAT_KEYS}


def protocol_id(resolved: dict) -> str:
    """The 10-hex id of ``resolved``'s protocol (seeds and run counts left out)."""
    return digest(protocol_of(resolved), 10)
