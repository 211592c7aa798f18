"""Cell-by-cell comparison of two sets of result records: the verdicts of ``fairbench regress`` and
``fairbench compare``.

Cells are matched by ``cell_id``; failing that by (protocol id, seed, evaluator), which tolerates a
different ``num_eval``; failing that by their names (dataset, method, ipc, seed, evaluator), which
means the protocol itself changed, reported as a ``changed`` row of its own.

Each metric of each matched cell gets one verdict. A metric's *worsening* is how many points
accuracy fell or a gap rose (``HIGHER_IS_BETTER`` says which way is worse).

- Exact rule, where both records carry the same machine fingerprint, the baseline's is deterministic
  (any CPU run, or CUDA with deterministic algorithms), the protocol and the evaluation seeds are the
  same: the runs must agree bit for bit, and any difference is ``changed``.
- Statistical rule, everywhere else (another CPU, thread count, library build; a GPU): a metric is
  ``worse`` when its worsening exceeds the metric's minimum effect AND, where both sides have two
  runs or more, a one-sided Welch t-test rejects "not worse" at level ``ALPHA``. With a single run
  on a side there is no variance to test, and the minimum effect alone decides.

``worse`` (under either rule), ``missing`` (a baseline cell absent from the new records) and
``failed`` (a baseline cell whose rerun failed) always fail; ``changed`` fails unless changes are
allowed; ``better``, ``ok`` (within the tolerance), ``same`` (bit for bit, under the exact rule) and
``new`` (a cell only the new records have) pass.

Beside the verdicts, the rows of both sides are ranked together (:func:`ranks_frame`): per
(dataset, IPC, evaluator), each headline metric's mean ± 95% interval and its tier rank
(:mod:`fairbench.report.ranks`), so a reader sees whether the new rows join or leave the top tier,
which the per-cell verdicts do not say.

Minimum effects, in points, come from the metric table (``fairbench.evaluation.metrics.MIN_EFFECT``);
docs/regress.md gives the cross-machine shifts they were sized from. With two runs a side, Welch's
test has one or two degrees of freedom and only flags large, consistent shifts; the minimum effect
is the main guard.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..core.atomic import write_text_atomic
from ..evaluation.metrics import HIGHER_IS_BETTER, METRICS, MIN_EFFECT
from ..report.ranks import HEADLINE, INTERVAL, TEST, better_p
from ..report.tables import eval_seeds, leaderboard_frame, record_protocol
from ..run.results import read_records

ALPHA = 0.05
FAILING = ("worse", "missing", "failed")
PROTOCOL = "(protocol)"  # the metric column of the row that reports a cell's protocol change


@dataclass
class Row:
    cell: str
    metric: str
    baseline: float | str | None
    now: float | str | None
    delta: float | None  # now - baseline, in points
    p: float | None  # one-sided Welch p-value of "now is worse"; None where not tested
    rule: str  # exact, welch, effect (single run), or - for a cell-level row
    verdict: str


@dataclass
class Comparison:
    rows: list[Row]
    allow_change: bool = False
    alpha: float = ALPHA
    min_effect: dict | None = None
    ranks: list[dict] | None = None  # :func:`ranks_frame`'s rows

    def rank_table(self, fmt: str = "simple") -> str:
        """Both sides' rows with each headline metric's mean ± 95% interval and tier rank."""
        headers = ["side", "dataset", "ipc", "evaluator", "method", "protocol"]
        headers += [c for m in HEADLINE for c in (m, f"{m} rank")] + ["runs"]
        body = [
            [row[h] for h in headers[:6]]
            + [c for m in HEADLINE for c in (_show_ci(row[m], row[f"{m}_ci95"]), _show(row[f"{m}_rank"], 0))]
            + [row["runs"]]
            for row in self.ranks or []
        ]
        caption = f"{TEST} (within each dataset, ipc and evaluator, both sides together); {INTERVAL}"
        return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True) + f"\n{caption}"

    def failing(self) -> list[Row]:
        fails = FAILING if self.allow_change else FAILING + ("changed",)
        return [row for row in self.rows if row.verdict in fails]

    @property
    def passed(self) -> bool:
        return not self.failing()

    def summary(self) -> str:
        failing = self.failing()
        counts = ", ".join(f"{n} {v}" for v, n in sorted(Counter(r.verdict for r in self.rows).items()))
        if not failing:
            return f"passed: {counts}"
        cells = sorted({f"{row.cell} {row.metric}" for row in failing})
        return f"FAILED: {counts}; failing: {'; '.join(cells)}"

    def table(self, fmt: str = "simple") -> str:
        headers = ["cell", "metric", "baseline", "now", "Δ", "p", "rule", "verdict"]
        mark = {r.verdict for r in self.failing()}
        body = [
            [
                r.cell,
                r.metric,
                _show(r.baseline),
                _show(r.now),
                _show(r.delta, signed=True),
                _show(r.p, 3),
                r.rule,
                f"**{r.verdict}**" if fmt == "github" and r.verdict in mark else r.verdict,
            ]
            for r in self.rows
        ]
        return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)

    def markdown(self, title: str) -> str:
        rule = (
            f"Welch one-sided test at level {self.alpha} and a minimum effect in points "
            f"({', '.join(f'{m} {v:g}' for m, v in self.minimums().items())}); exact where the "
            f"machine fingerprints match and the baseline is deterministic"
        )
        text = f"## {title}\n\n**{self.summary()}**\n\nRule: {rule}.\n\n{self.table('github')}\n"
        if self.ranks:
            text += f"\n### Ranks\n\n{self.rank_table('github')}\n"
        return text

    def as_json(self) -> str:
        return (
            json.dumps(
                {
                    "passed": self.passed,
                    "summary": self.summary(),
                    "alpha": self.alpha,
                    "min_effect": self.minimums(),
                    "allow_change": self.allow_change,
                    "rows": [asdict(r) for r in self.rows],
                    "ranks": self.ranks or [],
                },
                indent=1,
                allow_nan=False,
                default=str,
            )
            + "\n"
        )

    def minimums(self) -> dict:
        return {**MIN_EFFECT, **(self.min_effect or {})}


def _show(value, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return str(value)
    if isinstance(value, str):
        return value
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _show_ci(mean: float | None, ci: float | None) -> str:
    return _show(mean) + ("" if ci is None else f" ± {ci:.2f}")


def _runs_match_seeds(record: dict) -> bool:
    """Whether every metric has one run per evaluation seed (what a table row pools by seed); a
    hand-edited record that does not still gets its verdicts, only no rank."""
    seeds = len(eval_seeds(record))
    return all(len(m.get("runs", [])) == seeds for m in record.get("metrics", {}).values())


def ranks_frame(baseline: list[dict], now: list[dict]) -> list[dict]:
    """The table rows of both sides ranked together: each side's records keep their own rows (their
    protocol ids are prefixed with the side while the table is built), ranked per (dataset, ipc,
    evaluator); NaN becomes None."""
    tagged = [
        {**record, "protocol_id": f"{side}:{record_protocol(record)}"}
        for side, records in (("baseline", baseline), ("now", now))
        for record in records
        if record.get("status", "ok") == "ok" and _runs_match_seeds(record)
    ]
    frame = leaderboard_frame(tagged)
    if frame.empty:
        return []
    frame[["side", "protocol"]] = frame["protocol"].str.split(":", n=1, expand=True)
    columns = ["side", "dataset", "ipc", "evaluator", "method", "protocol", "runs"]
    columns += [c for m in HEADLINE for c in (m, f"{m}_ci95", f"{m}_rank")]
    frame = frame.sort_values(["dataset", "ipc", "evaluator", "side"], kind="stable")[columns].astype(object)
    return [
        {k: (None if v is None or v is pd.NA or v != v else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def cell_label(record: dict) -> str:
    return f"{record['dataset']} {record['method']} ipc{record['ipc']} seed{record['seed']} {record['evaluator']}"


def _keys(record: dict) -> list[tuple]:
    """The match keys of a record, most exact first."""
    return [
        ("id", record.get("cell_id")),
        ("protocol", record.get("protocol_id"), record["seed"], record["evaluator"]),
        ("names", record["dataset"], record["method"], record["ipc"], record["seed"], record["evaluator"]),
    ]


def match_cells(baseline: list[dict], now: list[dict]) -> tuple[list[tuple[dict, dict | None, str]], list[dict]]:
    """(baseline record, its counterpart or None, how matched) per baseline cell, and the new records
    no baseline cell matched. The last record of a cell wins (a folder may hold a cell twice)."""
    index: dict[tuple, dict] = {}
    for record in now:
        for key in _keys(record):
            index[key] = record
    pairs, used = [], set()
    for record in _latest(baseline):
        found, how = None, "-"
        for key in _keys(record):
            if key[1] is not None and key in index and id(index[key]) not in used:
                found, how = index[key], key[0]
                break
        if found is not None:
            used.add(id(found))
        pairs.append((record, found, how))
    unmatched = [r for r in _latest(now) if id(r) not in used]
    return pairs, unmatched


def _latest(records: list[dict]) -> list[dict]:
    """One record per cell (the last one written), in the order cells first appear."""
    latest: dict[tuple, dict] = {}
    for record in records:
        latest[_keys(record)[-1] + (record.get("cell_id"),)] = record
    return list(latest.values())


def exact_rule_applies(baseline: dict, now: dict) -> bool:
    """Bit-for-bit agreement is expected: same machine, deterministic baseline, same protocol and seeds."""
    fingerprint = baseline.get("fingerprint")
    return (
        fingerprint is not None
        and fingerprint == now.get("fingerprint")
        and bool(fingerprint.get("deterministic"))
        and baseline.get("protocol_id") == now.get("protocol_id")
        and baseline.get("eval_seeds") == now.get("eval_seeds")
    )


def worsening_p(baseline: list[float], now: list[float], higher_is_better: bool) -> float | None:
    """One-sided Welch p-value of "now is worse than baseline"; None with a single run on a side.

    Two constant samples have no variance to test: the p-value is then 0 if now is worse, else 1.
    """
    return better_p(baseline, now, higher_is_better)


def metric_verdict(
    metric: str,
    baseline: list[float],
    now: list[float],
    exact: bool,
    alpha: float = ALPHA,
    min_effect: float | None = None,
) -> tuple[str, float | None, str]:
    """(verdict, p-value, rule) of one metric's runs on both sides."""
    higher = HIGHER_IS_BETTER[metric]
    minimum = MIN_EFFECT[metric] if min_effect is None else min_effect
    base_nan, now_nan = (any(math.isnan(v) for v in runs) for runs in (baseline, now))
    if base_nan or now_nan:  # an undefined gap (no defined cell) on one side only is a change
        return ("ok" if base_nan and now_nan else "changed"), None, "exact" if exact else "-"
    worse_by = (np.mean(now) - np.mean(baseline)) * (-1 if higher else 1)
    p_worse = worsening_p(baseline, now, higher)
    p_better = worsening_p(now, baseline, higher)
    rule = "exact" if exact else ("welch" if p_worse is not None else "effect")
    if worse_by > minimum and (p_worse is None or p_worse < alpha):
        return "worse", p_worse, rule
    if exact and list(baseline) != list(now):
        return "changed", p_worse, rule
    if -worse_by > minimum and (p_better is None or p_better < alpha):
        return "better", p_worse, rule
    return ("same" if exact else "ok"), p_worse, rule


def compare_records(
    baseline: list[dict],
    now: list[dict],
    *,
    allow_change: bool = False,
    alpha: float = ALPHA,
    min_effect: float | None = None,
) -> Comparison:
    """Every baseline cell's verdicts against ``now``; failed baseline cells have nothing to regress from."""
    ok_baseline = [r for r in baseline if r.get("status", "ok") == "ok"]
    pairs, unmatched = match_cells(ok_baseline, now)
    rows: list[Row] = []
    for base, new, how in pairs:
        label = cell_label(base)
        if new is None:
            rows.append(Row(label, "-", "ok", "absent", None, None, "-", "missing"))
            continue
        if new.get("status", "ok") != "ok":
            rows.append(Row(label, "-", "ok", f"failed: {new.get('reason', '')}"[:60], None, None, "-", "failed"))
            continue
        if how == "names":
            rows.append(
                Row(label, PROTOCOL, base.get("protocol_id"), new.get("protocol_id"), None, None, "-", "changed")
            )
        exact = exact_rule_applies(base, new)
        for metric in METRICS:
            if metric not in base["metrics"] or metric not in new["metrics"]:
                continue
            base_runs, new_runs = base["metrics"][metric]["runs"], new["metrics"][metric]["runs"]
            verdict, p, rule = metric_verdict(metric, base_runs, new_runs, exact, alpha, min_effect)
            base_mean, new_mean = float(np.mean(base_runs)), float(np.mean(new_runs))
            delta = new_mean - base_mean
            rows.append(Row(label, metric, _finite(base_mean), _finite(new_mean), _finite(delta), p, rule, verdict))
    for new in unmatched:
        rows.append(Row(cell_label(new), "-", "absent", new.get("status", "ok"), None, None, "-", "new"))
    overrides = None if min_effect is None else {m: float(min_effect) for m in METRICS}
    return Comparison(
        rows, allow_change=allow_change, alpha=alpha, min_effect=overrides, ranks=ranks_frame(ok_baseline, now)
    )


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def publish(comparison: Comparison, title: str, markdown: str | None = None, json_path: str | None = None) -> int:
    """Print the table and the verdict, write the Markdown and JSON reports; the exit code (0 or 1)."""
    print(comparison.table())
    if comparison.ranks:
        print("\n" + comparison.rank_table())
    print(f"\n{title}: {comparison.summary()}")
    if markdown:
        write_text_atomic(markdown, comparison.markdown(title))
    if json_path:
        write_text_atomic(json_path, comparison.as_json())
    return 0 if comparison.passed else 1


def compare_folders(a: str, b: str, **options) -> Comparison:
    """``fairbench compare A B``: B's records judged against A's, nothing rerun."""
    return compare_records(read_records(a), read_records(b), **options)
