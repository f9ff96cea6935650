"""The Coq lemma set for ``execution.py --domain proof``: lemmas of Coq's own standard library, re-proved.

Debian's ``libcoq-stdlib`` (``apt-get install coq``) ships the ``.v`` sources next to the compiled library
(``coqc -where``/theories). Each top-level ``Lemma``/``Theorem`` of the chosen files becomes one item: its
statement, and a prelude made of everything before it in the file, with the proofs of earlier lemmas replaced by
``Admitted.`` (their statements stay usable, their proofs are not shown) — so only earlier lemmas are in scope.
The file's own module is never loaded (a library file is not among its own dependencies), so the lemma cannot
be cited by name. Run directly to print the set: ``python benchmarks/mcts_coq_lemmas.py --items 10``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

FILES = ["Bool/Bool.v"]
_LEMMA = re.compile(r"^(Lemma|Theorem|Fact|Remark|Corollary|Proposition)\s+([\w']+)\b")
_OPEN = re.compile(r"^(Section|Module(?!\s+(Import|Export)\b)(?!.*:=))\s+\w+")


def coq_theories(files: list[str] = FILES) -> Path:
    """Coq's standard library sources: the host's Coq if it has one, else copied once out of the sandbox image
    (the Coq that checks the proofs, so the lemmas always match it)."""
    if shutil.which("coqc"):
        where = subprocess.run(["coqc", "-where"], capture_output=True, text=True, check=True).stdout.strip()
        return Path(where) / "theories"
    cache = Path.home() / ".cache" / "ponder" / "coq-theories"
    if not all((cache / rel).exists() for rel in files):
        import docker

        from ponder.config import Settings

        client = docker.from_env()
        for rel in files:  # text files: read as a container's output (its log stream is not byte-safe for a tar)
            text = client.containers.run(
                Settings().toolserver.image,
                ["sh", "-c", f'cat "$(coqc -where)/theories/{rel}"'],
                remove=True,
                network_disabled=True,
            )
            (cache / rel).parent.mkdir(parents=True, exist_ok=True)
            (cache / rel).write_bytes(text)
    return cache


def strip_comments(text: str) -> str:
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith("(*", i):
            depth += 1
            i += 2
        elif depth and text.startswith("*)", i):
            depth -= 1
            i += 2
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def sentences(text: str) -> list[str]:
    """Coq sentences: text up to a period followed by white space (qualified names have no space after '.')."""
    parts = re.split(r"(?<=[^.]\.)\s+", strip_comments(text))
    return [" ".join(p.split()) for p in parts if p.strip()]


def extract(path: Path, source: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    prelude: list[str] = []
    sents = sentences(path.read_text(encoding="utf-8"))
    depth, i = 0, 0
    while i < len(sents):
        s = sents[i]
        m = _LEMMA.match(s)
        if m:
            j = i + 1
            while j < len(sents) and sents[j] not in ("Qed.", "Defined.", "Admitted."):
                j += 1
            proof = sents[i + 1 : j]
            end = sents[j] if j < len(sents) else ""
            if end == "Qed." and depth == 0 and "{" not in s:
                items.append(
                    {
                        "id": f"{source}:{m.group(2)}",
                        "name": m.group(2),
                        "statement": s,
                        "prelude": "\n".join(prelude),
                        "original_proof": proof,
                    }
                )
            if end == "Defined.":
                prelude.extend(sents[i : j + 1])
            else:
                prelude.extend([s, "Admitted."])
            i = j + 1
            continue
        if _OPEN.match(s):
            depth += 1
        elif s.startswith("End "):
            depth = max(depth - 1, 0)
        prelude.append(s)
        i += 1
    return items


def load_lemmas(n: int | None = None, files: list[str] = FILES) -> list[dict[str, Any]]:
    root = coq_theories(files)
    items: list[dict[str, Any]] = []
    for rel in files:
        items.extend(extract(root / rel, rel))
    return items[:n] if n else items


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="compile each original proof with its prelude (coqc)")
    args = parser.parse_args()
    ok = 0
    for lemma in load_lemmas(args.items):
        line = {"id": lemma["id"], "statement": lemma["statement"], "proof": " ".join(lemma["original_proof"])}
        if args.check:
            import tempfile

            with tempfile.TemporaryDirectory() as d:
                body = "\n".join(lemma["original_proof"])
                text = f"{lemma['prelude']}\n{lemma['statement']}\n{body}\nQed.\n"
                (Path(d) / "x.v").write_text(text)
                run = subprocess.run(["coqc", "-q", "x.v"], cwd=d, capture_output=True, text=True)
                line["compiles"] = run.returncode == 0
                ok += run.returncode == 0
        print(json.dumps(line))
    if args.check:
        print(json.dumps({"checked": args.items, "compiles": ok}))
