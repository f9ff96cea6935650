"""The ``ponder`` command: ask, models, and the sub-commands of each part (toolserver, index, kb, eval, serve)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from ponder.config import Backend, Settings
from ponder.evals._cli import eval_app
from ponder.search._cli import index_app, kb_app, search_cmd
from ponder.toolserver.cli import toolserver_app

app = typer.Typer(
    name="ponder",
    help="LLMs that reason (CoT, Chain-of-Knowledge, MCTS, planning), search and act in hardened sandboxes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(toolserver_app, name="toolserver")
app.add_typer(eval_app, name="eval")
app.add_typer(index_app, name="index")
app.add_typer(kb_app, name="kb")
app.command("search")(search_cmd)
console = Console()
err_console = Console(stderr=True)

BackendOpt = Annotated[Backend | None, typer.Option("--backend", help="embedded, openai, vllm or llamacpp")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL (…/v1)")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="model name on the server, or a GGUF path")]


def _fail(exc: Exception) -> typer.Exit:
    from ponder._cli_errors import fail

    return fail(err_console, exc)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question or task")],
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="strategy name (see `ponder strategies`)")] = "cot",
    family: Annotated[
        str, typer.Option(help="answer type: open, number, yes_no, choice (with --choice), string, code")
    ] = "open",
    choice: Annotated[
        list[str] | None,
        typer.Option("--choice", "-c", help="an option of a multiple-choice question, repeated: 'A: text' or 'text'"),
    ] = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the events as JSON lines")] = False,
) -> None:
    """Ask a question; the reasoning streams as it happens, then the answer."""
    from ponder._terminal import ask_and_print

    task = build_task(question, family, choice or [])
    from ponder.wiring import load_settings

    settings = load_settings(backend, base_url, model)
    try:
        asyncio.run(ask_and_print(settings, strategy, task, console, as_json=as_json))
    except Exception as exc:
        raise _fail(exc) from exc


def build_task(question: str, family: str, choices: list[str]) -> Any:
    """The task ``ask`` sends; a wrong answer type or a choice question without options is a usage error."""
    from ponder.agents import AnswerChoice, Task, TaskFamily

    try:
        kind = TaskFamily(family)
    except ValueError:
        valid = ", ".join(f.value for f in TaskFamily)
        raise typer.BadParameter(
            f"{family!r} is not an answer type; use one of: {valid}", param_hint="--family"
        ) from None
    if choices and kind is TaskFamily.open:
        kind = TaskFamily.choice
    if kind is TaskFamily.choice and len(choices) < 2:
        raise typer.BadParameter(
            "a choice question needs its options: --choice 'A: …' --choice 'B: …'", param_hint="--choice"
        )
    if choices and kind is not TaskFamily.choice:
        raise typer.BadParameter(f"--choice goes with --family choice, not {kind.value}", param_hint="--choice")
    options = []
    for i, raw in enumerate(choices):
        label, sep, text = raw.partition(":")
        if sep and 0 < len(label.strip()) <= 3 and text.strip():
            options.append(AnswerChoice(label=label.strip(), text=text.strip()))
        else:
            options.append(AnswerChoice(label=chr(ord("A") + i), text=raw.strip()))
    return Task(question=question, family=kind, choices=options)


@app.command()
def models(
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    check: Annotated[bool, typer.Option(help="send a tiny request to see whether the model answers")] = True,
) -> None:
    """Show the configured backend and model, and whether it answers."""
    from ponder.wiring import describe_model, load_settings

    settings = load_settings(backend, base_url, model)
    try:
        info: dict[str, Any] = asyncio.run(describe_model(settings, check=check))
    except Exception as exc:
        raise _fail(exc) from exc
    for key, value in info.items():
        console.print(f"[bold]{key}[/]: {value}")
    if check and not info.get("answers"):
        raise typer.Exit(code=1)


@app.command()
def strategies(
    name: Annotated[str | None, typer.Argument(help="one strategy: its options, defaults and bounds")] = None,
) -> None:
    """List the registered strategies, or one strategy's options (``ponder strategies sc``)."""
    from ponder.agents import strategy_class, strategy_names
    from ponder.api._catalog import options_model

    if name is None:
        for known, desc in strategy_names().items():
            console.print(f"[bold]{known}[/]  {desc}")
        return
    try:
        cls = strategy_class(name)
    except Exception as exc:
        raise _fail(exc) from exc
    resumable = "  (resumable)" if cls.resumable else ""
    console.print(f"[bold]{name}[/]  {strategy_names()[name]}{resumable}")
    schema = options_model(cls).model_json_schema()
    for field, spec in schema.get("properties", {}).items():
        bounds = ", ".join(f"{k} {spec[k]}" for k in ("minimum", "exclusiveMinimum", "maximum") if k in spec)
        default = json.dumps(spec["default"]) if "default" in spec else "required"
        about = spec.get("description", "")
        console.print(
            f"  [cyan]{field}[/] = {default}" + (f" ({bounds})" if bounds else "") + (f"  {about}" if about else "")
        )


@app.command("config")
def show_config() -> None:
    """Print the effective settings (secrets hidden); values left to a default computed here are filled in."""
    from ponder.llm.embedded._runtime import default_threads

    settings = Settings()
    values = settings.model_dump(mode="json")
    if values["llm"]["n_threads"] is None:
        values["llm"]["n_threads"] = default_threads()
        note = "llm.n_threads is not set: this machine's default is shown (every core on <= 2 cores, else all but one)"
    else:
        note = ""
    if settings.llm.backend == Backend.embedded:
        values["embedded_calibration"] = _stamped_calibration(settings)
    console.print_json(json.dumps(values, default=str))
    if note:
        console.print(f"[dim]{note}[/]")


def _stamped_calibration(settings: Settings) -> dict[str, Any] | str:
    from ponder.llm.embedded._calibration import load, settings_stamp

    try:
        cal = load(settings_stamp(settings.llm))
    except Exception as exc:  # noqa: BLE001 - config still prints when the model file is missing
        return f"unavailable: {exc}"
    if cal is None:
        return (
            "not measured yet for this llama.cpp build, model and settings: measured on the first request, or now "
            "by `ponder calibrate`"
        )
    return cal.summary()


@app.command("calibrate")
def calibrate_engine(
    force: Annotated[bool, typer.Option(help="measure again even if this build + model was measured")] = False,
) -> None:
    """Measure what the embedded engine's steps cost on this host (once per llama.cpp build and model; ~40 s on 2
    quiet cores) and print the choices drawn from it: threads, rows per step, draft lengths."""
    from ponder.llm.embedded._calibration import calibrate

    settings = Settings()
    try:
        cal = calibrate(settings.llm, force=force)
    except Exception as exc:
        raise _fail(exc) from exc
    console.print_json(json.dumps(cal.summary()))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1; others need API keys)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    tools: Annotated[bool, typer.Option(help="run the ToolServer in process (needs Docker)")] = True,
    search: Annotated[bool, typer.Option(help="open the local search index and knowledge base")] = True,
    ray: Annotated[
        str | None, typer.Option("--ray", help="run eval jobs on Ray: an address, `auto`, or `local`")
    ] = None,
    hash_key: Annotated[
        str | None, typer.Option("--hash-key", help="print the sha256:<hash> form of an API key and exit")
    ] = None,
) -> None:
    """Serve the API, the chat UI (http://127.0.0.1:8000/) and the OpenAI-compatible endpoint."""
    if hash_key is not None:
        from ponder.api import hash_key as _hash

        console.print(f"sha256:{_hash(hash_key)}", highlight=False)
        return
    import logging

    from ponder.api._serve import serve as run_server

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ponder.wiring import load_settings

    settings = load_settings(backend, base_url, model)
    if host is not None:
        settings.api.host = host
    if port is not None:
        settings.api.port = port
    try:
        run_server(settings, tools=tools, search=search, ray_address=ray)
    except Exception as exc:
        raise _fail(exc) from exc


@app.command("mcp")
def mcp_cmd(
    http: Annotated[bool, typer.Option("--http", help="serve streamable HTTP (at /mcp) instead of stdio")] = False,
    host: Annotated[str, typer.Option(help="address for --http (others than loopback need API keys)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port for --http")] = 8200,
    strategies: Annotated[
        bool, typer.Option("--strategies", help="also offer ask_ponder: questions answered by ponder's strategies")
    ] = False,
) -> None:
    """Serve the sandbox tools (python, shell, files) over MCP: stdio for a local client, --http for remote ones."""
    from ponder.mcp_server import StrategyRunner, build_mcp_server

    settings = Settings()
    server = build_mcp_server(settings.toolserver, strategies=StrategyRunner(settings) if strategies else None)
    if not http:
        asyncio.run(server.run_stdio_async())
        return
    import uvicorn

    from ponder.api._auth import KeyRing, check_binding
    from ponder.errors import Unauthenticated
    from ponder.mcp_server import guarded

    keys = KeyRing(settings.api.api_keys)
    try:
        check_binding(host, keys)
    except Exception as exc:
        raise _fail(exc) from exc

    async def allowed(token: str | None) -> bool:
        try:
            keys.owner(token)
        except Unauthenticated:
            return False
        return True

    uvicorn.run(guarded(server.streamable_http_app(), allowed), host=host, port=port, log_level="warning")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
