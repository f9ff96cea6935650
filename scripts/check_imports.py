"""Import structure of src/ponder, checked (CI runs it from scripts/test.sh): no module takes part in an import
cycle (function-level imports count: a lazy import is still an arrow), and no package imports one above it in
the layers below. The import graph comes from grimp (import-linter's engine), not from hand-written AST walking.

    python scripts/check_imports.py
"""

from __future__ import annotations

import sys

import grimp

# what each package must never import (directly or lazily): the model and tool seams know nothing of strategies;
# strategies know nothing of the service, the CLI or the wiring that builds their context; nothing but the CLI
# imports the terminal rendering
FORBIDDEN = {
    "ponder.llm": ["ponder.agents", "ponder.tools", "ponder.search", "ponder.toolserver", "ponder.api",
                   "ponder.evals", "ponder.wiring", "ponder.cli", "ponder._terminal"],
    "ponder.tools": ["ponder.agents", "ponder.toolserver", "ponder.api", "ponder.evals", "ponder.wiring",
                     "ponder.cli", "ponder._terminal", "ponder.search"],
    "ponder.search": ["ponder.agents", "ponder.toolserver", "ponder.api", "ponder.evals", "ponder.wiring",
                      "ponder.cli", "ponder._terminal"],
    "ponder.agents": ["ponder.toolserver", "ponder.api", "ponder.evals", "ponder.wiring", "ponder.cli",
                      "ponder._terminal"],
    "ponder.wiring": ["ponder.api", "ponder.evals", "ponder.cli", "ponder._terminal"],
    "ponder.evals": ["ponder.api", "ponder.cli", "ponder._terminal"],
    "ponder.api": ["ponder.cli", "ponder._terminal"],
    # the sandbox service depends on tools, config and errors only (``ponder mcp``'s server lives above it)
    "ponder.toolserver": ["ponder.api", "ponder.evals", "ponder._terminal", "ponder.agents", "ponder.wiring",
                          "ponder.llm", "ponder.search", "ponder.cli"],
    "ponder.netguard": ["ponder.search", "ponder.tools", "ponder.agents", "ponder.api", "ponder.wiring"],
}  # fmt: skip


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    found: dict[frozenset[str], list[str]] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module) if imported != module else None
            if back:
                found.setdefault(frozenset(back), [module, *back])
    return list(found.values())


def wrong_way(graph: grimp.ImportGraph) -> list[str]:
    out = []
    for importer, banned in FORBIDDEN.items():
        for imported in banned:
            if {importer, imported} <= graph.modules and graph.direct_import_exists(
                importer=importer, imported=imported, as_packages=True
            ):
                details = [
                    f"{d['importer']}:{d['line_number']} {d['line_contents']}"
                    for m in sorted(graph.modules)
                    if m == importer or m.startswith(importer + ".")
                    for t in sorted(graph.find_modules_directly_imported_by(m))
                    if t == imported or t.startswith(imported + ".")
                    for d in graph.get_import_details(importer=m, imported=t)
                ]
                out.append(f"{importer} must not import {imported}: " + "; ".join(details))
    return out


def main() -> int:
    graph = grimp.build_graph("ponder", exclude_type_checking_imports=True)
    problems = [" -> ".join(c) for c in cycles(graph)] + wrong_way(graph)
    for problem in problems:
        print(problem)
    print(f"{len(graph.modules)} modules: {len(problems)} import problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
