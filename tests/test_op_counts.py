"""No DM iteration issues more than 10% more aten operations than the committed counts
(benchmarks/op_counts.json, from benchmarks/op_counts.py), in either setting: on a GPU each is a
launch."""

import importlib.util
import json

import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("op_counts", REPO / "benchmarks" / "op_counts.py")
op_counts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(op_counts)
COMMITTED = json.loads(op_counts.BASELINE.read_text())


@pytest.mark.parametrize("setting", op_counts.SETTINGS)
@pytest.mark.parametrize("method", op_counts.METHODS)
def test_op_count_does_not_grow(method, setting):
    counted = op_counts.op_counts(method, setting)
    committed = COMMITTED[setting][method]
    for key in ("top_level", "launching"):
        assert counted[key] <= 1.10 * committed[key], (setting, method, key, counted, committed)
