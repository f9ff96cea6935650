"""``ponder index ...``, ``ponder kb ...`` and ``ponder search``: cheap to import (the work is imported lazily)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from ponder.config import SearchSettings

T = TypeVar("T")
index_app = typer.Typer(help="The local search index: build the default (WordNet), add files, delete documents.")
kb_app = typer.Typer(help="The knowledge base of triples: add triples, check how well a triple is supported.")
console = Console()
err_console = Console(stderr=True)


def _settings() -> SearchSettings:
    from ponder.config import Settings

    return Settings().search


def _run(make: Callable[[], Awaitable[T]]) -> T:
    from ponder.errors import PonderError

    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except PonderError as exc:
        from ponder._cli_errors import fail

        raise fail(err_console, exc) from exc


@index_app.command("build-default")
def build_default_cmd(
    force: Annotated[bool, typer.Option(help="rebuild even when the index already holds WordNet")] = False,
    wordnet_dir: Annotated[Path | None, typer.Option(help="a WordNet 3.0 dict folder")] = None,
) -> None:
    """Build the default index and knowledge base from WordNet 3.0 (skipped when present; ~1-2 minutes)."""
    from ponder.search import build_default, build_index, build_kb

    settings = _settings()
    if wordnet_dir is not None:
        settings.wordnet_dir = wordnet_dir

    async def go() -> None:
        index = build_index(settings)
        kb = build_kb(settings, passages=index)
        try:
            report = await build_default(settings.wordnet_dir, index, kb, force=force)
        finally:
            await kb.close()
            await index.close()
        what = "already built" if report.skipped else f"built in {report.seconds:.1f} s"
        console.print(
            f"default knowledge {what}: {report.documents} documents in {settings.index_dir} ({settings.engine}),"
            f" {report.triples} triples in {settings.kb_path}"
        )

    _run(go)


@index_app.command("add")
def add_cmd(paths: Annotated[list[Path], typer.Argument(help="files or folders (.txt .md .html .jsonl, .gz)")]) -> None:
    """Add (or re-add) files and folders; a re-added folder replaces its earlier documents."""
    from ponder.search import build_index, path_documents

    settings = _settings()

    async def go() -> None:
        index = build_index(settings)
        dense = None
        if settings.dense:
            from ponder.search import DenseIndex, MiniLMEmbedder

            dense = DenseIndex(settings.index_dir / "dense.sqlite", MiniLMEmbedder())
        try:
            for path in paths:
                docs = list(path_documents(path))
                if path.is_dir():
                    await index.delete_prefix(f"{path.expanduser().name}/")
                n = await index.add(docs)
                if dense is not None:
                    await dense.add(docs)
                console.print(f"{path}: {n} documents indexed")
        finally:
            await index.close()
            if dense is not None:
                await dense.close()

    _run(go)


@index_app.command("delete")
def delete_cmd(
    doc_id: Annotated[str, typer.Argument(help="a document id (see `ponder search`)")],
    prefix: Annotated[bool, typer.Option(help="delete every document whose id starts with DOC_ID")] = False,
) -> None:
    """Delete a document (or, with --prefix, all documents of a folder)."""
    from ponder.errors import NotFoundError
    from ponder.search import build_index

    settings = _settings()

    async def go() -> None:
        index = build_index(settings)
        try:
            n = await index.delete_prefix(doc_id) if prefix else int(await index.delete(doc_id))
        finally:
            await index.close()
        if not n:
            raise NotFoundError(f"no document matches {doc_id!r}")
        console.print(f"deleted {n} document(s)")

    _run(go)


@index_app.command("stats")
def stats_cmd() -> None:
    """Where the index and knowledge base are and how much they hold."""
    from ponder.search import build_index, build_kb

    settings = _settings()

    async def go() -> None:
        index = build_index(settings)
        kb = build_kb(settings, passages=index)
        try:
            console.print(f"index: {settings.index_dir} ({settings.engine}), {await index.count()} documents")
            console.print(f"knowledge base: {settings.kb_path}, {await kb.count()} triples")
        finally:
            await kb.close()
            await index.close()

    _run(go)


@kb_app.command("add")
def kb_add_cmd(
    file: Annotated[Path, typer.Argument(help="JSONL or CSV of subject, relation, object[, truth]")],
    source: Annotated[str, typer.Option(help="where the triples come from (shown as evidence source)")] = "user",
) -> None:
    """Add triples from a JSONL or CSV file (a truth/label column of 0/false stores known-false triples)."""
    from ponder.search import build_kb, read_triples

    settings = _settings()
    rows = _run(lambda: asyncio.to_thread(read_triples, file))

    async def go() -> None:
        kb = build_kb(settings)
        try:
            added = await kb.add([t for t, truth in rows if truth], source=source)
            added += await kb.add([t for t, truth in rows if not truth], source=source, truth=False)
        finally:
            await kb.close()
        console.print(f"{file}: {len(rows)} triples read, {added} new")

    _run(go)


@kb_app.command("check")
def kb_check_cmd(
    subject: str,
    relation: str,
    obj: Annotated[str, typer.Argument(metavar="OBJECT")],
    as_json: Annotated[bool, typer.Option("--json", help="print the Support object as JSON")] = False,
) -> None:
    """How well the knowledge supports (SUBJECT, RELATION, OBJECT): a score in [0, 1] and the evidence."""
    from ponder.search import build_index, build_kb

    settings = _settings()

    async def go() -> None:
        index = build_index(settings)
        kb = build_kb(settings, passages=index)
        try:
            support = await kb.support(subject, relation, obj)
        finally:
            await kb.close()
            await index.close()
        if as_json:
            console.print_json(support.model_dump_json())
            return
        console.print(f"[bold]score[/]: {support.score:.2f} ({'supported' if support.supported else 'not supported'})")
        for e in support.evidence:
            console.print(f"  {e.stance:<11} {e.score:.2f}  {e.text}  ({e.source})", markup=False, highlight=False)

    _run(go)


def highlighted(snippet: str) -> Text:
    """A snippet's ``**matched**`` words in bold for a terminal (the text itself is never read as markup)."""
    out = Text()
    for i, part in enumerate(snippet.split("**")):
        out.append(part, style="bold yellow" if i % 2 else None)
    return out


def search_cmd(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("-k", help="how many hits")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print hits as JSON lines")] = False,
) -> None:
    """Search the configured backend (the local index by default: WordNet plus what you added)."""
    from ponder.errors import ConfigError
    from ponder.search import build_search

    settings = _settings()

    async def go() -> None:
        engine = build_search(settings)
        try:
            hits = await engine.search(query, k)
            if not hits and settings.backend == "local":
                count = getattr(engine, "count", None)
                if count is not None and await count() == 0:
                    raise ConfigError(
                        f"the local index at {settings.index_dir} is empty",
                        hint="build it with `ponder index build-default` or add files with `ponder index add PATH`",
                    )
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                await close()
        for i, h in enumerate(hits, start=1):
            if as_json:
                print(json.dumps(h.model_dump(mode="json")))
            else:
                console.print(f"[bold]{i}. {h.title or h.doc_id}[/]  [dim]{h.url or h.doc_id}  {h.score:.2f}[/]")
                console.print(Text("   ").append(highlighted(h.snippet)))
        if not hits and not as_json:
            console.print("no hits")

    _run(go)
