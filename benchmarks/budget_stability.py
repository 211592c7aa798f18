"""Is a leaderboard budget stable? Each row's headline metrics at N and 2N distillation iterations.

A table's order means something only at a budget where more optimisation would not reorder it.
This reads the records of runs that differ only in ``distill.iterations`` (a sweep, e.g.
``fairbench run -m suite=quickstart distill.iterations=100,200,400 num_eval=10``) and, for every
method and headline metric, prints the mean ± the half-width of its 95% interval at each budget
and how far the next doubling moves it. A budget N is *stable* when doubling it moves no row's
mean by more than that row's interval at N, on any headline metric; rows without iterations
(``random``) are the same at every budget.

    python benchmarks/budget_stability.py runs/qs/results.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fairbench.report.ranks import HEADLINE, ci95


def read_runs(paths: list[Path]) -> dict[str, dict[int, dict[str, list[float]]]]:
    """method → iterations → metric → evaluation runs, from the finished records."""
    rows: dict[str, dict[int, dict[str, list[float]]]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["status"] == "ok":
                metrics = {m: record["metrics"][m]["runs"] for m in HEADLINE}
                rows.setdefault(record["method"], {})[record["iterations"]] = metrics
    return rows


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def moves(rows, budget: int) -> list[tuple[str, str, float, float]]:
    """(method, metric, move, interval at ``budget``) for every row measured at both budgets."""
    found = []
    for method, by_budget in rows.items():
        if budget in by_budget and 2 * budget in by_budget:
            for metric in HEADLINE:
                at, doubled = by_budget[budget][metric], by_budget[2 * budget][metric]
                found.append((method, metric, abs(mean(doubled) - mean(at)), ci95(at)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.jsonl files of the runs")
    args = parser.parse_args()
    rows = read_runs(args.results)
    budgets = sorted({b for by_budget in rows.values() for b in by_budget if b})
    print("| method | metric | " + " | ".join(f"{b} iterations" for b in budgets) + " |")
    print("|---|---|" + "---|" * len(budgets))
    for method, by_budget in rows.items():
        for metric in HEADLINE:
            cells = []
            for budget in budgets:
                runs = by_budget.get(budget) or by_budget.get(0)
                cells.append(f"{mean(runs[metric]):.2f} ± {ci95(runs[metric]):.2f}" if runs else "–")
            print(f"| {method} | {metric} | " + " | ".join(cells) + " |")
    print()
    for budget in budgets:
        found = moves(rows, budget)
        if not found:
            continue
        beyond = [f"{m} {metric} by {move:.2f} (interval {ci:.2f})" for m, metric, move, ci in found if move > ci]
        verdict = "stable" if not beyond else "not stable: doubling moves " + "; ".join(beyond)
        print(f"{budget} -> {2 * budget} iterations: {verdict}")


if __name__ == "__main__":
    main()
