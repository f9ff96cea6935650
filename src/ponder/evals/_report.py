"""Compare runs: accuracy per strategy and dataset with 95% Wilson intervals, costs per item, and an exact
McNemar test of each strategy against a baseline on the items both answered; a Markdown table and two PNG plots.

Failed items count as wrong (the strategy did not answer). By default every run of a dataset is restricted to
the items all runs of that dataset finished, so the strategies are compared on the same questions.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from pydantic import BaseModel

from ponder.errors import InputError
from ponder.evals._store import ItemRecord, RunMeta, RunStore


class Run(BaseModel):
    path: Path
    meta: RunMeta
    records: dict[str, ItemRecord]


class Row(BaseModel):
    dataset: str
    strategy: str
    n: int
    correct: int
    failed: int
    accuracy: float
    low: float
    high: float
    tokens: float
    calls: float
    seconds: float
    p_vs_baseline: float | None = None
    baseline: str = ""


def load_run(path: Path) -> Run:
    store = RunStore(path)
    return Run(path=path, meta=store.meta(), records=store.records())


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials (95% by default)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (b: only A right, c: only B right)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail: float = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def summarize(runs: list[Run], *, same_items: bool = True, baseline: str | None = "cot") -> list[Row]:
    if not runs:
        raise InputError("nothing to compare", hint="pass one or more run folders")
    by_dataset: dict[str, list[Run]] = {}
    for run in runs:
        by_dataset.setdefault(run.meta.dataset, []).append(run)
    rows: list[Row] = []
    for dataset, group in sorted(by_dataset.items()):
        ids = [set(r.records) for r in group]
        common = set.intersection(*ids) if same_items else None
        base = next((r for r in group if r.meta.title == baseline), None)
        for run in group:
            recs = [r for i, r in run.records.items() if common is None or i in common]
            n = len(recs)
            k = sum(r.correct for r in recs)
            low, high = wilson(k, n)
            p = None
            if base is not None and base is not run:
                pairs = [(base.records[r.id].correct, r.correct) for r in recs if r.id in base.records]
                p = mcnemar_exact(sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs))
            rows.append(
                Row(
                    dataset=dataset,
                    strategy=run.meta.title,
                    n=n,
                    correct=k,
                    failed=sum(r.status == "failed" for r in recs),
                    accuracy=k / n if n else 0.0,
                    low=low,
                    high=high,
                    tokens=sum(r.tokens for r in recs) / n if n else 0.0,
                    calls=sum(r.calls for r in recs) / n if n else 0.0,
                    seconds=sum(r.seconds for r in recs) / n if n else 0.0,
                    p_vs_baseline=p,
                    baseline=base.meta.title if base is not None and p is not None else "",
                )
            )
    return rows


def markdown_table(rows: list[Row]) -> str:
    head = (
        "| dataset | strategy | n | accuracy | 95% CI | failed | tokens/item | calls/item | s/item | p vs baseline |\n"
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        p = f"{r.p_vs_baseline:.3f} ({r.baseline})" if r.p_vs_baseline is not None else ""
        lines.append(
            f"| {r.dataset} | {r.strategy} | {r.n} | {r.accuracy:.1%} | {r.low:.1%}–{r.high:.1%} | {r.failed} | "
            f"{r.tokens:.0f} | {r.calls:.1f} | {r.seconds:.1f} | {p} |"
        )
    return head + "\n".join(lines) + "\n"


def plot_accuracy(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r.dataset for r in rows})
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    width = 0.8 / max(1, len(strategies))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(datasets) + 2), 4.2))
    for j, strategy in enumerate(strategies):
        xs, ys, lo, hi = [], [], [], []
        for i, dataset in enumerate(datasets):
            row = next((r for r in rows if r.dataset == dataset and r.strategy == strategy), None)
            if row is None:
                continue
            xs.append(i + (j - (len(strategies) - 1) / 2) * width)
            ys.append(row.accuracy)
            lo.append(max(0.0, row.accuracy - row.low))
            hi.append(max(0.0, row.high - row.accuracy))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=strategy)
    ax.set_xticks(range(len(datasets)), [f"{d}\n(n={_n(rows, d)})" for d in datasets])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% Wilson interval)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(6, len(strategies)), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _n(rows: list[Row], dataset: str) -> str:
    ns = sorted({r.n for r in rows if r.dataset == dataset})
    return "/".join(str(n) for n in ns)


def plot_tokens(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = "osD^v<>p*h"
    datasets = sorted({r.dataset for r in rows})
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    for i, dataset in enumerate(datasets):
        for j, strategy in enumerate(strategies):
            row = next((r for r in rows if r.dataset == dataset and r.strategy == strategy), None)
            if row is None:
                continue
            ax.errorbar(
                [max(row.tokens, 1.0)],
                [row.accuracy],
                yerr=[[max(0.0, row.accuracy - row.low)], [max(0.0, row.high - row.accuracy)]],
                fmt=markers[i % len(markers)],
                color=f"C{j}",
                capsize=3,
                label=f"{dataset} / {strategy}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("tokens per item (prompt + completion)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    runs: list[Run], out_dir: Path, *, same_items: bool = True, baseline: str | None = "cot", title: str = ""
) -> dict[str, Path]:
    rows = summarize(runs, same_items=same_items, baseline=baseline)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md", "accuracy": out_dir / "accuracy.png", "tokens": out_dir / "tokens.png"}
    plot_accuracy(rows, paths["accuracy"])
    plot_tokens(rows, paths["tokens"])
    models = sorted({r.meta.model for r in runs if r.meta.model})
    text = [f"# {title or 'Evaluation report'}", ""]
    if models:
        text += [f"Model: {', '.join(models)}.", ""]
    text += [
        markdown_table(rows),
        "Accuracy counts failed items as wrong. "
        + ("Each dataset's runs are compared on the items all of them finished. " if same_items else "")
        + "p: exact McNemar test against the baseline on the same items.",
        "",
        "![accuracy](accuracy.png)",
        "",
        "![accuracy vs tokens](tokens.png)",
        "",
        "Runs: " + ", ".join(f"`{_shown(r.path, out_dir)}`" for r in runs),
        "",
    ]
    paths["markdown"].write_text("\n".join(text), encoding="utf-8")
    return paths


def _shown(path: Path, out_dir: Path) -> str:
    """A run folder as the report names it: relative to the report (so the report reads the same on every machine
    and in the repository), or by its name when it lives elsewhere."""
    try:
        return os.path.relpath(path.resolve(), out_dir.resolve())
    except ValueError:  # another drive (Windows)
        return path.name
