"""Knowledge for eval runs: CoK verification needs the knowledge base; attach it when it has been built."""

from __future__ import annotations

import dataclasses

from ponder.agents import Context
from ponder.config import Settings


def attach_knowledge(ctx: Context, settings: Settings) -> Context:
    """``ctx`` with the knowledge base at ``settings.search.kb_path`` when that exists and ``ctx`` has none.

    Only the knowledge base is attached (it already draws passage evidence from the local index), so a triple's
    support is not counted twice. Nothing is created when the knowledge base has not been built.
    """
    if ctx.kb is not None or not settings.search.kb_path.is_file():
        return ctx
    from ponder.search import build_index, build_kb

    return dataclasses.replace(ctx, kb=build_kb(settings.search, passages=build_index(settings.search)))
