"""``check_method``: the contract a method must meet before its numbers mean anything.

It runs the method on a tiny synthetic group-labelled dataset (3 classes, 2 groups, 8x8 images,
imbalanced groups) on the CPU with tiny budgets, and checks each clause:

- ``end to end``: the method distills with its base, its preparation step first if it has one;
- ``shape, dtype, device and labels``: ``ipc`` images per class (or ``ipc`` stored images that
  decode into more, as IDC's), floating point, the image shape, on the run's device, labels in
  range and class-major;
- ``finite``: every value;
- ``same seed, same set``: a second run with the same seed gives the same images;
- ``test split untouched``: the distiller is handed the train split only (as the harness does); a
  sealed test split records any read, and no synthetic image is a copy of a test image;
- ``matching terms well formed``: on batches with absent groups and an absent class, the variant's
  ``MatchingTerms`` have indices in range and in the sample's class, non-negative finite weights,
  each active term's weights summing to one, and no term for a cell absent from the batch;
- ``unknown groups``: on a batch where some groups are unknown (-1, ``dataset.group_known``), the
  terms are well formed and either the unknown samples carry no weight and the others keep the
  weights they have without the unknown samples (a variant of group terms: ``fairdd``, ``cobra``),
  or the terms do not depend on the unknown samples' groups at all (a variant that pools a class:
  ``vanilla``); checked once the terms are well formed.

``fairbench check-method ID`` prints one line per failed clause and exits 1 on any failure; in a
plugin's own tests, ``assert check_method("dm+mine").ok``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .core.errors import first_line
from .data import GroupDataset
from .distill import DistillContext, SyntheticSet, build_distiller, method_hparams, parse_method
from .distill import check_method_hparams as check_hparams
from .distill.aggregation import UNKNOWN_GROUP, MatchingTerms, matching_terms
from .evaluation.evaluate import evaluator_spec, make_model

CLASSES, GROUPS, SIZE = 3, 2, 8
# Budgets that make every built-in method run in about a second: each key a method has is lowered
# to at most this value (booleans are set).
TINY_BUDGET = {
    "iterations": 1,
    "real_batch": 4,
    "outer_loop": 2,
    "inner_loop": 1,
    "batch_train": 16,
    "warmup_epochs": 1,
    "num_experts": 1,
    "trajectory_epochs": 2,
    "expert_epochs": 1,
    "max_start_epoch": 0,
    "syn_steps": 2,
    "expert_batch": 64,
    "expert_dsa": False,
    "bary_iterations": 1,
    "ot_iterations": 5,
}
NET_WIDTH = 8


class _SealedSplit(GroupDataset):
    """A test split that notes any read of its images, labels or groups once armed."""

    armed = False
    touched = False

    def __getattribute__(self, name):
        if name in ("images", "labels", "groups") and object.__getattribute__(self, "armed"):
            object.__setattr__(self, "touched", True)
        return super().__getattribute__(name)


def tiny_splits(seed: int = 0) -> tuple[GroupDataset, _SealedSplit]:
    """(train, sealed test): 24 train images per class, group 0 three times group 1; every train
    pixel even, every test pixel odd, so a copy of a test image is recognisable."""
    generator = torch.Generator().manual_seed(seed)

    def split(per_class: int, parity: int, cls=GroupDataset):
        labels = torch.arange(CLASSES).repeat_interleave(per_class)
        groups = (torch.arange(len(labels)) % 4 == 3).long()
        pattern = torch.linspace(0, 1, SIZE).view(1, 1, SIZE) * (labels.view(-1, 1, 1, 1) + 1) / CLASSES
        tint = torch.tensor([0.2, 0.8]).view(2, 1)[groups].view(-1, 1, 1, 1)
        base = (
            0.6 * pattern.expand(-1, 3, SIZE, SIZE)
            + 0.3 * tint
            + 0.1 * torch.rand(len(labels), 3, SIZE, SIZE, generator=generator)
        )
        images = (base * 126).round().to(torch.uint8) * 2 + parity
        return cls(images, labels, groups, [f"c{c}" for c in range(CLASSES)], ["g0", "g1"], (0.5,) * 3, (0.5,) * 3)

    return split(24, 0), split(6, 1, _SealedSplit)


@dataclass
class CheckReport:
    method_id: str
    failed: list[tuple[str, str]] = field(default_factory=list)  # (clause, why)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def lines(self) -> list[str]:
        return [f"ok    {c}" for c in self.passed] + [f"FAIL  {c}: {why}" for c, why in self.failed]

    def __str__(self) -> str:
        verdict = "passes" if self.ok else f"fails {len(self.failed)} clause(s)"
        return "\n".join([f"{self.method_id} {verdict} check-method", *self.lines()])


def terms_problem(
    terms: object, labels: torch.Tensor, groups: torch.Tensor, num_classes: int, num_groups: int
) -> str | None:
    """Why ``terms`` is not a well-formed answer for this batch, or None."""
    if not isinstance(terms, MatchingTerms):
        return f"the variant returned {type(terms).__name__}, not fairbench.MatchingTerms"
    per_class = terms.terms_per_class
    n = len(labels)
    if not isinstance(per_class, int) or per_class < 1:
        return f"terms_per_class={per_class!r} must be a positive integer"
    if tuple(terms.active.shape) != (num_classes, per_class) or terms.active.dtype != torch.bool:
        return (
            f"active must be a bool tensor of shape ({num_classes}, {per_class}), got "
            f"{terms.active.dtype} {tuple(terms.active.shape)}"
        )
    if tuple(terms.term.shape) != (n,) or terms.term.dtype not in (torch.int64, torch.int32):
        return f"term must be an integer tensor of shape ({n},), got {terms.term.dtype} {tuple(terms.term.shape)}"
    if tuple(terms.weight.shape) != (n,) or not terms.weight.is_floating_point():
        return f"weight must be a float tensor of shape ({n},), got {terms.weight.dtype} {tuple(terms.weight.shape)}"
    term = terms.term.long()
    if bool(((term < 0) | (term >= num_classes * per_class)).any()):
        return f"term indices out of range [0, {num_classes * per_class})"
    if bool((term // per_class != labels).any()):
        return "a sample feeds a term of another class"
    weight = terms.weight.double()
    if not bool(torch.isfinite(weight).all()):
        return "weights are not all finite"
    if bool((weight < 0).any()):
        return "weights are negative"
    sums = torch.zeros(num_classes * per_class, dtype=torch.float64).index_add_(0, term, weight)
    active = terms.active.flatten()
    if bool((sums[~active] > 0).any()):
        return "samples carry weight into a term marked inactive"
    off = (sums[active] - 1).abs()
    if len(off) and bool((off > 1e-4).any()):
        worst = int(active.nonzero()[off.argmax()])
        present = torch.bincount(labels * num_groups + groups.clamp(min=0), minlength=num_classes * num_groups)
        hint = " (a term for a (class, group) cell absent from the batch)" if float(sums[worst]) == 0 else ""
        return (
            f"the weights of active term {worst} (class {worst // per_class}) sum to "
            f"{float(sums[worst]):.4g}, not 1{hint}; cell counts {present.tolist()}"
        )
    return None


def _terms_clause(variant: str) -> str | None:
    generator = torch.Generator().manual_seed(0)
    batches = []
    labels = torch.arange(CLASSES).repeat_interleave(8)
    batches.append((labels, (torch.arange(len(labels)) % 4 == 3).long()))  # both groups, imbalanced
    batches.append((labels, (labels == 1).long()))  # one group per class
    batches.append((labels[labels != 2], torch.randint(GROUPS, (16,), generator=generator)))  # class 2 absent
    for labels, groups in batches:
        try:
            terms = matching_terms(variant, labels, groups, CLASSES, GROUPS)
        except Exception as error:
            return f"the variant raised {type(error).__name__}: {first_line(error)}"
        problem = terms_problem(terms, labels, groups, CLASSES, GROUPS)
        if problem:
            return f"{problem} (batch labels {labels.tolist()}, groups {groups.tolist()})"
    return None


def _unknown_clause(variant: str) -> str | None:
    """The unknown-group contract (module docstring) on one batch with every class partly known."""
    labels = torch.arange(CLASSES).repeat_interleave(8)
    groups = (torch.arange(len(labels)) % 4 == 3).long()
    unknown = torch.arange(len(labels)) % 3 == 1
    seen = torch.where(unknown, UNKNOWN_GROUP, groups)
    try:
        terms = matching_terms(variant, labels, seen, CLASSES, GROUPS)
        problem = terms_problem(terms, labels, seen, CLASSES, GROUPS)
        if problem:
            return f"{problem} (batch labels {labels.tolist()}, groups {seen.tolist()})"
        without = matching_terms(variant, labels[~unknown], groups[~unknown], CLASSES, GROUPS)
        filled = [matching_terms(variant, labels, torch.where(unknown, g, groups), CLASSES, GROUPS) for g in (0, 1)]
    except Exception as error:
        return f"the variant raised {type(error).__name__} on unknown groups (-1): {first_line(error)}"
    ignores_groups = all(torch.equal(t.term, terms.term) and torch.allclose(t.weight, terms.weight) for t in filled)
    drops_unknown = (
        bool((terms.weight[unknown] == 0).all())
        and torch.allclose(terms.weight[~unknown], without.weight)
        and torch.equal(terms.term[~unknown], without.term)
    )
    if not (ignores_groups or drops_unknown):
        return (
            "samples of unknown group (-1) must either carry weight 0 (the others weighted as without them) "
            "or be pooled regardless of group; "
            f"weights {[round(float(w), 4) for w in terms.weight]} for groups {seen.tolist()}"
        )
    return None


def _tiny_hparams(method_id: str, ipc: int, overrides: dict | None) -> dict:
    hparams = method_hparams(method_id, "check-method", ipc)
    tiny = {}
    for key, value in TINY_BUDGET.items():
        if key in hparams:
            current = hparams[key]
            tiny[key] = value if isinstance(value, bool) else min(current, value)
    tiny.update(overrides or {})
    hparams = method_hparams(method_id, "check-method", ipc, tiny)
    check_hparams(method_id, ipc, hparams, tiny)
    return hparams


def _context(hparams: dict, train: GroupDataset, device: torch.device, experts_dir: Path) -> DistillContext:
    net_spec = None
    if hparams.get("net"):
        net_spec = evaluator_spec(hparams["net"])
        if "width" in net_spec["model"]:
            net_spec["model"]["width"] = min(net_spec["model"]["width"], NET_WIDTH)
    return DistillContext(
        device=device,
        make_net=(lambda: make_model(net_spec, train.image_shape, train.num_classes)) if net_spec else None,
        experts_dir=experts_dir,
        provenance={"dataset": "check-method", "dataset_params": {}, "net": net_spec},
    )


def _result_problem(syn: SyntheticSet, train: GroupDataset, ipc: int, device: torch.device) -> str | None:
    images, labels = syn.images, syn.labels
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        return "images and labels must be tensors"
    if not images.is_floating_point():
        return f"images must be floating point (normalised), got {images.dtype}"
    if images.dim() != 4 or tuple(images.shape[1:]) != train.image_shape:
        return f"images must be (N, {', '.join(map(str, train.image_shape))}), got {tuple(images.shape)}"
    if images.device.type != device.type:
        return f"images must be on {device}, got {images.device}"
    if labels.dtype != torch.int64 or labels.shape != (len(images),):
        return f"labels must be int64 of shape ({len(images)},), got {labels.dtype} {tuple(labels.shape)}"
    if bool(((labels < 0) | (labels >= train.num_classes)).any()):
        return f"labels out of range [0, {train.num_classes})"
    counts = torch.bincount(labels.cpu(), minlength=train.num_classes)
    stored = syn.extras.get("stored_per_class", ipc)
    if stored != ipc or len(set(counts.tolist())) != 1 or (counts[0] != ipc and "stored_per_class" not in syn.extras):
        return f"expected {ipc} images per class, got {counts.tolist()}"
    if not bool((labels.cpu().diff() >= 0).all()):
        return "images must be in class-major order (labels sorted)"
    return None


def _copies_test(syn: SyntheticSet, test: GroupDataset) -> bool:
    """Whether some synthetic image is a normalised test image (every pixel odd)."""
    pixels = (syn.images.detach().cpu().double() * 0.5 + 0.5) * 255
    whole = (pixels - pixels.round()).abs().flatten(1).amax(1) < 1e-3
    odd = (pixels.round().remainder(2) == 1).flatten(1).all(1)
    return bool((whole & odd).any())


def check_method(
    method_id: str, *, overrides: dict | None = None, ipc: int = 2, seed: int = 0, device: str = "cpu"
) -> CheckReport:
    """Run every clause of the contract for ``method_id``; ``overrides`` are ``distill.KEY`` values
    (a plugin's own budget keys, to keep the check fast)."""
    report = CheckReport(method_id)
    base, variant = parse_method(method_id)
    on = torch.device(device)
    train, test = tiny_splits()

    def clause(name: str, problem: str | None) -> None:
        (report.failed.append((name, problem)) if problem else report.passed.append(name))

    malformed = _terms_clause(variant)
    clause("matching terms well formed", malformed)
    if malformed is None:  # one fault, one line: malformed terms are not also an unknown-group fault
        clause("unknown groups", _unknown_clause(variant))
    with tempfile.TemporaryDirectory() as experts_dir:
        runs = []
        try:
            hparams = _tiny_hparams(method_id, ipc, overrides)
            for _ in range(2):
                distiller = build_distiller(method_id, hparams)
                ctx = _context(hparams, train.to(on), on, Path(experts_dir))
                distiller.prepare(train.to(on), ctx)
                torch.manual_seed(seed)
                test.armed = True
                try:
                    runs.append(distiller.distill(train.to(on), ipc, ctx))
                finally:
                    test.armed = False
        except Exception as error:
            clause("end to end", f"{type(error).__name__}: {first_line(error)}")
            return report
    clause("end to end", None)
    first, second = runs
    clause("shape, dtype, device and labels", _result_problem(first, train, ipc, on))
    finite = all(bool(torch.isfinite(t).all()) for t in (first.images.detach(),) if t.is_floating_point())
    clause("finite", None if finite else "the synthetic images hold NaN or infinite values")
    same = (
        first.images.shape == second.images.shape
        and torch.equal(first.labels, second.labels)
        and torch.allclose(first.images.detach(), second.images.detach(), rtol=0, atol=0, equal_nan=True)
    )
    clause("same seed, same set", None if same else "two runs with the same seed gave different images")
    leak = (
        "the distiller read the test split"
        if test.touched
        else "a synthetic image is a copy of a test image"
        if _copies_test(first, test)
        else None
    )
    clause("test split untouched", leak)
    return report
