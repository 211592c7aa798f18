"""Which protocols a bundle may ask ``fairbench verify`` to run.

A bundle names the protocol its sets are evaluated under, and verify re-runs it on the
maintainer's machine, so the submitter must not steer that evaluation (``eval.epochs`` of 10^9,
a network of 10^6 channels, ``batch_size: 0``). Each cell's protocol is therefore:

- rebuilt from run keys, exactly as ``fairbench run`` builds and checks a run (the same ranges,
  the same networks-fit check), and refused unless the rebuilt protocol has the cell's id;
- held to the memory this machine has for the evaluation's networks
  (:func:`fairbench.run.fit.check_network_fits`, as a run is);
- matched against the protocols the registered suites define (``fairbench list suites``): by
  default (``protocols=registered``) a protocol no suite defines is refused, so a submitter
  cannot make their own row with ``epochs: 1``. A maintainer who accepts one passes
  ``protocols=any``.
"""

from __future__ import annotations

from functools import cache

from ..core.errors import FairbenchError, first_line
from ..core.protocol import protocol_id
from ..run.config import RUN_DEFAULTS, merge_settings, resolve_run_config, suite_names, validate
from ..run.plan import make_plan, resolved_config

PROTOCOL_POLICIES = ("registered", "any")


def protocol_run_config(protocol: dict, seed: int, num_eval: int) -> dict:
    """The run keys that rebuild ``protocol`` (its suite name aside), as ``fairbench regress`` and
    verify replay it."""
    evaluator, net = protocol["evaluator"], protocol.get("net")
    models = {evaluator["name"]: evaluator["model"]}
    if net:
        models.setdefault(net["name"], net["model"])
    return {
        "datasets": [protocol["dataset"]["name"]],
        "dataset": protocol["dataset"]["params"],
        "methods": [protocol["method"]["id"]],
        "distill": protocol["method"]["hparams"],
        "ipc": [protocol["ipc"]],
        "seeds": [seed],
        "evaluators": [evaluator["name"]],
        "eval": evaluator["train"],
        "models": models,
        "metrics": evaluator["metrics"],
        "num_eval": num_eval,
        "suite": protocol["suite"],
    }


def check_rebuilds(cell: dict, num_eval: int) -> None:
    """Refuse a cell whose protocol ``fairbench run`` would not accept or would not rebuild."""
    settings = protocol_run_config(cell["protocol"], cell["seed"], num_eval)
    suite = settings.pop("suite")
    try:
        config = validate(merge_settings(RUN_DEFAULTS, settings, dotlist=[])) | {"suite": suite}
        cells = make_plan(config)
    except FairbenchError as error:
        raise FairbenchError(f"its protocol is not one fairbench run accepts: {first_line(error)}") from None
    rebuilt = {protocol_id(resolved_config(c, spec, config)) for c in cells for spec in c.evaluators}
    if cell["protocol_id"] not in rebuilt:
        raise FairbenchError(
            f"its protocol {cell['protocol_id']} is not what fairbench run makes of the same run keys "
            f"({', '.join(sorted(rebuilt))}); it holds settings a run cannot have"
        )


@cache
def suite_protocols(name: str) -> frozenset[str]:
    """The protocol ids registered suite ``name`` defines (none for a name no suite has, or a suite
    this installation cannot plan, such as one needing a plugin it lacks)."""
    if name not in suite_names():
        return frozenset()
    try:
        config = resolve_run_config([f"suite={name}"])
        cells = make_plan(config)
    except FairbenchError:
        return frozenset()
    return frozenset(protocol_id(resolved_config(c, spec, config)) for c in cells for spec in c.evaluators)


def suite_of(cell: dict) -> str | None:
    """The registered suite that defines the cell's protocol, or None. A protocol names its suite
    and its id hashes that name, so only that suite can define it."""
    name = cell["protocol"]["suite"]
    return name if cell["protocol_id"] in suite_protocols(name) else None
