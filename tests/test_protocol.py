"""The reference protocol (FairDD's and COBRA's public code) is fairbench's default."""

import pytest
import torch

from fairbench.core.errors import FairbenchError
from fairbench.evaluation.evaluate import evaluator_spec
from fairbench.training import train as train_module
from fairbench.training.train import train_classifier


def _optimizers_built(monkeypatch, schedule, epochs=4):
    built, epochs_run = [], []
    real_sgd = torch.optim.SGD

    def recording_sgd(params, lr, **kwargs):
        built.append(lr)
        return real_sgd(params, lr=lr, **kwargs)

    monkeypatch.setattr(train_module.torch.optim, "SGD", recording_sgd)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    train_classifier(
        model,
        torch.randn(6, 3, 2, 2),
        torch.arange(6) % 3,
        epochs=epochs,
        lr=0.1,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=4,
        schedule=schedule,
        on_epoch=lambda: epochs_run.append(1),
    )
    return built, len(epochs_run)


def test_reference_schedule_trains_e_plus_one_epochs_and_rebuilds_sgd(monkeypatch):
    built, epochs = _optimizers_built(monkeypatch, "reference")
    assert epochs == 5  # for ep in range(E + 1)
    assert built == pytest.approx([0.1, 0.01])  # a new SGD (fresh momentum) at lr x 0.1


def test_multistep_keeps_one_optimizer(monkeypatch):
    built, epochs = _optimizers_built(monkeypatch, "multistep")
    assert (built, epochs) == ([0.1], 4)


def test_the_rates_follow_the_reference_decay_point():
    # lr x 0.1 after epoch E//2 + 1 (0-based): E = 4 → epochs 0..3 at lr, epoch 4 at lr/10.
    assert train_module._epoch_rates(4, 1.0, "reference") == pytest.approx([1, 1, 1, 1, 0.1])
    assert train_module._epoch_rates(4, 1.0, "multistep") == pytest.approx([1, 1, 1, 0.1])
    assert train_module._epoch_rates(3, 1.0, "constant") == [1, 1, 1]


def test_every_evaluator_records_the_reference_schedule_and_zero_convention():
    spec = evaluator_spec("convnet")
    assert spec["train"]["schedule"] == "reference"
    assert spec["metrics"] == {"undefined": "zero"}
    assert evaluator_spec("convnet", metrics={"undefined": "skip"})["metrics"] == {"undefined": "skip"}
    with pytest.raises(FairbenchError, match="metrics.undefined 'none'; choose from: skip, zero"):
        evaluator_spec("convnet", metrics={"undefined": "none"})
    with pytest.raises(FairbenchError, match="eval.schedule"):
        evaluator_spec("convnet", {"schedule": "cosine"})


def test_cobra_warm_start_is_plain_sgd_with_dsa(monkeypatch):
    """COBRA-DM's reference warm-starts each step's network with SGD(lr_net): no momentum, no weight
    decay, a constant rate, DSA on; fairbench reads all of it from the registry."""
    from fairbench.distill import dm, method_hparams
    from fairbench.training.augment import DSA

    hp = method_hparams("dm+cobra", "cmnist", 10, {})
    assert (
        hp["warmup_epochs"],
        hp["warmup_lr"],
        hp["warmup_momentum"],
        hp["warmup_weight_decay"],
        hp["warmup_schedule"],
        hp["warmup_dsa"],
    ) == (10, 0.01, 0.0, 0.0, "constant", True)
    calls = []
    monkeypatch.setattr(dm, "train_classifier", lambda *a, **kw: calls.append(kw))
    dm.warm_start(None, None, None, hp, DSA())
    assert calls[0]["momentum"] == 0.0 and calls[0]["weight_decay"] == 0.0
    assert calls[0]["schedule"] == "constant" and isinstance(calls[0]["augment"], DSA)


def test_reported_rows_match_cells_of_the_papers_protocol():
    import pandas as pd

    from fairbench.report.reported import reported_rows

    frame = pd.DataFrame(
        [
            {"dataset": "cmnist", "ipc": 10, "evaluator": "convnet", "method": "dm+fairdd", "acc": 90.0},
            {"dataset": "cmnist", "ipc": 10, "evaluator": "convnet", "method": "dm+wbary", "acc": 91.0},
            {"dataset": "celeba", "ipc": 10, "evaluator": "convnet", "method": "dm", "acc": 60.0},
        ]
    )
    rows = reported_rows(frame, suite="fairdd-dm-cmnist")
    assert rows[["dataset", "method"]].values.tolist() == [["cmnist", "dm+fairdd"], ["celeba", "dm"]]
    fairdd = rows.iloc[0]
    assert (fairdd["acc"], fairdd["deo_max"], fairdd["deo_mean"]) == (94.61, 17.04, 7.95)
    assert "FairDD" in fairdd["source"] and "IPC 10" in fairdd["source"]
    assert pd.isna(rows.iloc[1]["acc"]) and rows.iloc[1]["deo_max"] == 30.01  # not given: not guessed
    assert reported_rows(frame, suite="cobra-dm-cmnist").empty  # another protocol
    records = [
        {
            "dataset": "cmnist",
            "ipc": 10,
            "evaluator": "convnet",
            "method": "dm",
            "status": "ok",
            "config": {"suite": "cmnist"},
        }
    ]
    assert reported_rows(records)["acc"].tolist() == [25.01]


def test_every_paper_suite_resolves_and_says_its_protocol():
    from fairbench.run.config import RUN_DEFAULTS, load_suite, merge_settings, suite_names, validate
    from fairbench.run.plan import make_plan

    papers = [n for n in suite_names() if n.startswith(("fairdd-", "cobra-"))]
    assert {"fairdd-dm-cmnist", "fairdd-dc-celeba", "cobra-dm-bffhq", "cobra-dc-cifar10s"} <= set(papers)
    for name in papers:
        suite = load_suite(name)
        assert suite["description"].startswith("paper suite - ")
        config = validate(merge_settings(RUN_DEFAULTS, suite, dotlist=[])) | {"suite": name}
        assert make_plan(config)
    cobra = make_plan(
        validate(merge_settings(RUN_DEFAULTS, load_suite("cobra-dm-cmnist"), dotlist=[])) | {"suite": "cobra-dm-cmnist"}
    )
    at_100 = next(c for c in cobra if c.ipc == 100 and c.method == "dm+cobra")
    assert (
        at_100.hparams["iterations"],
        at_100.hparams["real_batch"],
        at_100.hparams["lr_img"],
        at_100.hparams["warmup_epochs"],
    ) == (2600, 600, 1.0, 100)
    assert at_100.evaluators[0]["train"]["epochs"] == 1500


def test_metrics_undefined_is_a_run_key_that_reaches_every_evaluator():
    from fairbench.run.config import resolve_run_config
    from fairbench.run.plan import make_plan

    cells = make_plan(resolve_run_config(["metrics.undefined=skip", "evaluators=[convnet,mlp]"]))
    assert {e["metrics"]["undefined"] for c in cells for e in c.evaluators} == {"skip"}
    assert all(c.net is None or c.net["metrics"]["undefined"] == "zero" for c in cells)  # synset keys unchanged
    with pytest.raises(FairbenchError, match="metrics has no setting nope"):
        make_plan(resolve_run_config(["metrics.nope=1"]))
