"""``ponder eval``: run a strategy over a benchmark (resumable), list datasets, compare runs into a report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ponder.config import Backend

eval_app = typer.Typer(
    help="Batch reasoning-benchmark runs: `ponder eval run --dataset gsm8k --strategy cot --limit 50`, then "
    "`ponder eval compare runs/*`.",
    no_args_is_help=False,
)
console = Console()
err_console = Console(stderr=True)


def parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (numbers, true/false), else as strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} {pair!r} must look like key=value")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _exit(exc: Exception) -> typer.Exit:
    from ponder._cli_errors import fail

    return fail(err_console, exc)


def run_command(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="built-in name or a .jsonl(.gz) path")] = None,
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="strategy name (see `ponder strategies`)")] = "cot",
    limit: Annotated[int | None, typer.Option(help="first N items (after --offset)")] = None,
    offset: Annotated[int, typer.Option(help="skip the first N items")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="items in flight at once")] = 1,
    option: Annotated[list[str], typer.Option("--option", "-o", help="strategy option key=value (repeat)")] = [],  # noqa: B006
    label: Annotated[str, typer.Option(help="name of this configuration in reports (default: strategy)")] = "",
    run_dir: Annotated[Path | None, typer.Option(help="the run folder (default: RUNS_DIR/<dataset>-<label>)")] = None,
    runs_dir: Annotated[Path, typer.Option(help="where run folders go")] = Path("runs"),
    data_dir: Annotated[Path | None, typer.Option(help="benchmark folder (default: DATA_DIR/benchmarks)")] = None,
    family: Annotated[str | None, typer.Option(help="answer family of a JSONL file: number, choice, ...")] = None,
    field: Annotated[list[str], typer.Option("--field", help="JSONL field mapping, e.g. question=prompt")] = [],  # noqa: B006
    retry_failed: Annotated[bool, typer.Option(help="run failed items again")] = False,
    events: Annotated[bool, typer.Option(help="keep each item's events in its record")] = True,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    backend: Annotated[Backend | None, typer.Option(help="embedded, openai, vllm or llamacpp")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL (…/v1)")] = None,
    model: Annotated[str | None, typer.Option(help="model name on the server, or a GGUF path")] = None,
    ray: Annotated[
        str | None,
        typer.Option(help="run items as Ray tasks: 'auto', 'ray://head:10001' or 'local' (needs a model server)"),
    ] = None,
) -> None:
    """Run a strategy over a dataset. Rerunning the same command resumes: finished items are never asked again."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is None:
        console.print(ctx.get_help())
        raise typer.Exit(code=0 if ctx.info_name == "eval" else 2)
    from ponder.agents import TaskFamily
    from ponder.evals import _agentbench, _bfcl
    from ponder.evals._datasets import FieldMap, load_dataset
    from ponder.evals._knowledge import attach_knowledge
    from ponder.evals._runner import EvalRunner, RunSummary, check_strategy
    from ponder.wiring import load_settings, open_context

    try:
        settings = load_settings(backend, base_url, model)
        options = parse_pairs(option, "--option")
        tool_calls = _bfcl.is_bfcl(dataset)
        if tool_calls:  # BFCL: the backend model calls the item's functions through ponder-direct's tool path
            if strategy != "cot" or options:
                raise typer.BadParameter(
                    "BFCL datasets measure ponder-direct's tool calling, which takes no strategy or options",
                    param_hint="--strategy/--option",
                )
            strategy = _bfcl.DIRECT
            data = _bfcl.load_bfcl(dataset, limit=limit, offset=offset)
        elif _agentbench.is_agentbench(dataset):  # tasks in their own sandbox environments, checked there
            check_strategy(strategy, options)
            options = _agentbench.default_options(strategy, options)
            data = _agentbench.load_agentbench(limit=limit, offset=offset)
        else:
            check_strategy(strategy, options)
            fields = FieldMap(**parse_pairs(field, "--field")) if field else None
            data = load_dataset(
                dataset,
                data_dir=data_dir or settings.data_dir / "benchmarks",
                family=TaskFamily(family) if family else None,
                fields=fields,
                limit=limit,
                offset=offset,
            )
        name = label or strategy
        folder = run_dir or runs_dir / f"{data.name}-{name}"
        executor = None
        in_process = tool_calls or _agentbench.is_agentbench(dataset)
        if ray is not None and in_process:
            raise typer.BadParameter(f"{data.name} runs in this process", param_hint="--ray")
        if ray is not None:
            from ponder.evals._ray import RayExecutor

            executor = RayExecutor(settings, address=None if ray == "local" else ray)
            executor.start()  # in this (the main) thread: see RayExecutor.start

        async def run_all() -> RunSummary:
            # A lazily started ToolServer: MCTS strategies use it during the search, and code datasets are scored
            # by running the hidden tests in it after the search has chosen (never before).
            async with open_context(settings, search=False) as opened:
                run_ctx = attach_knowledge(opened, settings)
                checker = None
                if data.family is TaskFamily.code and run_ctx.toolserver is not None:
                    from ponder.agents.mcts.scoring import SandboxCodeChecker

                    checker = SandboxCodeChecker(run_ctx.toolserver)
                runner = EvalRunner(
                    run_ctx,
                    concurrency=concurrency,
                    keep_events=events,
                    progress=progress,
                    code_checker=checker,
                    executor=executor,
                )
                category = data.name.removeprefix(_bfcl.PREFIX)
                solver, scorer = None, None
                if tool_calls:
                    solver = _bfcl.make_tool_call_solver(run_ctx)
                    scorer = lambda item, result: _bfcl.score_bfcl(category, item, result.answer)  # noqa: E731
                elif _agentbench.is_agentbench(data.name):
                    solver = _agentbench.make_agentbench_solver(run_ctx, settings.toolserver, data, keep_events=events)
                    scorer = _agentbench.score_agentbench
                return await runner.run(
                    data,
                    strategy,
                    folder,
                    options=options,
                    label=label,
                    retry_failed=retry_failed,
                    limit=limit,
                    offset=offset,
                    solver=solver,
                    scorer=scorer,
                )

        try:
            summary = asyncio.run(run_all())
        finally:
            if executor is not None:
                executor.close()
    except typer.BadParameter:
        raise
    except Exception as exc:
        raise _exit(exc) from exc
    console.print(
        f"[bold]{data.name} / {name}[/]: {summary.correct}/{summary.items} correct ({summary.accuracy:.1%}), "
        f"{summary.failed} failed, {summary.ran} run now, {summary.resumed} already done; results in {folder}"
    )


eval_app.callback(invoke_without_command=True)(run_command)
eval_app.command("run")(run_command)


@eval_app.command("compare")
def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="run folders made by `ponder eval run`")],
    out: Annotated[Path, typer.Option(help="where report.md and the plots go")] = Path("reports/latest"),
    baseline: Annotated[str, typer.Option(help="strategy/label the McNemar p-values compare against")] = "cot",
    all_items: Annotated[bool, typer.Option(help="use every finished item, not only those all runs share")] = False,
    title: Annotated[str, typer.Option(help="report title")] = "",
) -> None:
    """Compare runs: a Markdown table (accuracy, 95% intervals, costs, McNemar p) and PNG plots."""
    from ponder.evals._report import load_run, markdown_table, summarize, write_report

    try:
        loaded = [load_run(p) for p in runs]
        paths = write_report(loaded, out, same_items=not all_items, baseline=baseline, title=title)
        console.print(markdown_table(summarize(loaded, same_items=not all_items, baseline=baseline)), markup=False)
    except Exception as exc:
        raise _exit(exc) from exc
    console.print(f"report: {paths['markdown']}, plots: {paths['accuracy']}, {paths['tokens']}")


@eval_app.command("datasets")
def datasets_command(
    data_dir: Annotated[Path | None, typer.Option(help="benchmark folder (default: DATA_DIR/benchmarks)")] = None,
) -> None:
    """The built-in datasets: answer type, whether this machine has them, license, and how to get them."""
    from rich.table import Table

    from ponder.evals._datasets import BUILTIN
    from ponder.evals._fetch import UPSTREAM, how_to_get
    from ponder.wiring import load_settings

    folder = data_dir or load_settings().data_dir / "benchmarks"
    table = Table(title=f"datasets (looked for in {folder})", title_justify="left")
    for column in ("name", "answer", "here", "license", "how to get it"):
        table.add_column(column, overflow="fold")
    for spec in BUILTIN.values():
        here = "yes" if (folder / spec.file).is_file() else "no"
        upstream = UPSTREAM.get(spec.name)
        table.add_row(
            f"{spec.name}\n[dim]{spec.note}[/]",
            spec.family.value,
            here,
            upstream.license if upstream else "?",
            how_to_get(spec.name),
        )
    from ponder.evals import _bfcl

    installed = _bfcl.available()
    for category in _bfcl.CATEGORIES:
        name = _bfcl.PREFIX + category
        table.add_row(
            f"{name}\n[dim]BFCL {category}: tool calls, scored by bfcl-eval's AST checker[/]",
            "tool calls",
            "yes" if installed else "no",
            "Apache-2.0",
            f"ponder eval run -d {name} --limit 20" if installed else _bfcl.INSTALL_HINT,
        )
    from ponder.evals import _agentbench

    has_agentbench = _agentbench.available()
    table.add_row(
        f"{_agentbench.NAME}\n[dim]AgentBench OS interaction, dev split (26 tasks): an agent in a sandbox, checked "
        "there[/]",
        "checked in the sandbox",
        "yes" if has_agentbench else "no",
        "Apache-2.0 (AgentBench), MIT (inspect-evals)",
        f"ponder eval run -d {_agentbench.NAME} -s react" if has_agentbench else _agentbench.INSTALL_HINT,
    )
    console.print(table)
    console.print(
        "[dim]Any JSONL file works too: ponder eval -d my.jsonl --family number (--field question=prompt ...).[/]"
    )


@eval_app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(help="a built-in dataset (see `ponder eval datasets`)")],
    data_dir: Annotated[Path | None, typer.Option(help="benchmark folder (default: DATA_DIR/benchmarks)")] = None,
    source: Annotated[
        str | None, typer.Option("--from", help="a mirror URL of the same upstream file (not hash-checked)")
    ] = None,
) -> None:
    """Download a public dataset from its upstream repository (pinned commit, hash-checked) into the benchmark
    folder, in the form `ponder eval` reads."""
    from ponder.evals._fetch import UPSTREAM, fetch
    from ponder.wiring import load_settings

    folder = data_dir or load_settings().data_dir / "benchmarks"
    try:
        path, count, verified = fetch(name, folder, source=source)
    except Exception as exc:
        raise _exit(exc) from exc
    check = "matches the upstream hash" if verified else "[yellow]not checked against the upstream hash[/]"
    console.print(f"{name}: {count} items -> {path} ({check}); license: {UPSTREAM[name].license}")
    console.print(f"try: ponder eval run -d {name} --limit 20" + (f" --data-dir {folder}" if data_dir else ""))
