"""Batch reasoning-benchmark runs: datasets (gold kept away from strategies), scoring per answer family, a
resumable runner with bounded concurrency behind an executor seam, and reports with 95% intervals and plots."""

from ponder.evals._datasets import BUILTIN, Dataset, DatasetSpec, EvalItem, FieldMap, load_dataset
from ponder.evals._report import Row, Run, load_run, markdown_table, mcnemar_exact, summarize, wilson, write_report
from ponder.evals._runner import EvalRunner, Executor, Job, LocalExecutor, Outcome, RunSummary, make_solver
from ponder.evals._scoring import CodeChecker, Score, parse_label, parse_number, parse_yes_no, score_answer, score_item
from ponder.evals._store import ItemRecord, RunMeta, RunStore

__all__ = [
    "BUILTIN",
    "CodeChecker",
    "Dataset",
    "DatasetSpec",
    "EvalItem",
    "EvalRunner",
    "Executor",
    "FieldMap",
    "ItemRecord",
    "Job",
    "LocalExecutor",
    "Outcome",
    "Row",
    "Run",
    "RunMeta",
    "RunStore",
    "RunSummary",
    "Score",
    "load_dataset",
    "load_run",
    "make_solver",
    "markdown_table",
    "mcnemar_exact",
    "parse_label",
    "parse_number",
    "parse_yes_no",
    "score_answer",
    "score_item",
    "summarize",
    "wilson",
    "write_report",
]
