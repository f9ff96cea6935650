"""Where each built-in dataset comes from, under which license, and ``ponder eval fetch``: download one from its
upstream repository (pinned to a commit, checked against the upstream git blob hash) and write it in the form
``ponder eval`` reads (``<name>.jsonl.gz`` in the benchmark folder).

Downloads go through httpx (streamed, redirects followed, a size cap); the few lines that turn each upstream format
into ponder's JSONL are per dataset because every upstream file is shaped differently.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ponder.errors import FetchError, InputError, NotFoundError

MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Upstream:
    repo: str  # https://github.com/owner/name
    path: str  # the file in the repository
    commit: str  # pinned: the bytes never change under us
    blob_sha1: str  # git's hash of the file ("blob <size>\0<bytes>")
    license: str
    convert: Callable[[bytes], Iterator[dict[str, Any]]] | None = None  # None: not fetched by ponder (yet)

    @property
    def url(self) -> str:
        owner_name = self.repo.removeprefix("https://github.com/")
        return f"https://raw.githubusercontent.com/{owner_name}/{self.commit}/{self.path}"


def _number_text(value: float | int | str) -> str:
    number = float(str(value).replace(",", ""))
    return str(int(number)) if number.is_integer() else str(number)


def _gsm8k(raw: bytes) -> Iterator[dict[str, Any]]:
    for i, line in enumerate(line for line in raw.decode().splitlines() if line.strip()):
        row = json.loads(line)
        solution, _, answer = row["answer"].rpartition("####")
        yield {
            "id": f"gsm8k-test-{i + 1:04d}",
            "question": row["question"],
            "answer": _number_text(answer.strip()),
            "solution": solution.strip(),
        }


def _svamp(raw: bytes) -> Iterator[dict[str, Any]]:
    for row in json.loads(raw):
        body, question = row["Body"].strip(), row["Question"].strip()
        yield {
            "id": row["ID"],
            "question": f"{body} {question}",
            "answer": _number_text(row["Answer"]),
            "equation": row.get("Equation", ""),
            "type": row.get("Type", ""),
        }


def _humaneval(raw: bytes) -> Iterator[dict[str, Any]]:
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            yield {k: row[k] for k in ("task_id", "prompt", "test", "entry_point", "canonical_solution")}


_KOJIMA = "https://github.com/kojima-takeshi188/zero_shot_cot"
_KOJIMA_COMMIT = "5ef330fcdeec0cd26aee27943504f91f8ec1c33c"

UPSTREAM: dict[str, Upstream] = {
    "gsm8k": Upstream(
        "https://github.com/openai/grade-school-math",
        "grade_school_math/data/test.jsonl",
        "3101c7d5072418e28b9008a6636bde82a006892c",
        "e4c2ff4942b9a78bd74f04141224c11e28d12dc9",
        "MIT (c) 2021 OpenAI",
        _gsm8k,
    ),
    "svamp": Upstream(
        "https://github.com/arkilpatel/SVAMP",
        "SVAMP.json",
        "689d7ccac74b9983a2ac7cc3b264f441b99e7c53",
        "aad093525105c6331581d7082250b9c22578271e",
        "MIT (c) 2021 Arkil Patel",
        _svamp,
    ),
    "humaneval": Upstream(
        "https://github.com/openai/human-eval",
        "data/HumanEval.jsonl.gz",
        "6d43fb980f9fee3c892a914eda09951f772ad10d",
        "998d25196e17af24daf9b6cb3a975fe752528e46",
        "MIT (c) 2021 OpenAI",
        _humaneval,
    ),
    "commonsenseqa": Upstream(_KOJIMA, "dataset/CommonsenseQA/dev_rand_split.jsonl", _KOJIMA_COMMIT, "", "MIT"),
    "strategyqa": Upstream(
        _KOJIMA, "dataset/StrategyQA/task.json", _KOJIMA_COMMIT, "", "Apache-2.0 (BIG-bench); StrategyQA MIT"
    ),
    "aqua": Upstream(_KOJIMA, "dataset/AQuA/test.json", _KOJIMA_COMMIT, "", "Apache-2.0"),
    "addsub": Upstream(_KOJIMA, "dataset/AddSub/AddSub.json", _KOJIMA_COMMIT, "", "none published"),
    "multiarith": Upstream(_KOJIMA, "dataset/MultiArith/MultiArith.json", _KOJIMA_COMMIT, "", "none published"),
    "coin_flip": Upstream(_KOJIMA, "dataset/coin_flip/coin_flip.json", _KOJIMA_COMMIT, "", "none published"),
    "last_letters": Upstream(_KOJIMA, "dataset/last_letters/last_letters.json", _KOJIMA_COMMIT, "", "none published"),
    "boolq": Upstream("https://github.com/google-research-datasets/boolean-questions", "", "", "", "CC-BY-SA-3.0"),
    "arc_challenge": Upstream("https://allenai.org/data/arc", "", "", "", "CC-BY-SA-4.0"),
    "openbookqa": Upstream("https://allenai.org/data/open-book-qa", "", "", "", "none published"),
    "mbpp": Upstream("https://github.com/google-research/google-research/tree/master/mbpp", "", "", "", "CC-BY-4.0"),
}


def how_to_get(name: str) -> str:
    upstream = UPSTREAM.get(name)
    if upstream is None:
        return "no known source"
    if upstream.convert is not None:
        return f"ponder eval fetch {name}"
    what = upstream.path.rsplit("/", 1)[-1] if upstream.path else "the data"
    return f"download {what} from {upstream.repo}, save as JSONL, run with -d FILE --family ..."


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def download(url: str, *, timeout_s: float = 60.0, transport: httpx.BaseTransport | None = None) -> bytes:
    """The bytes at ``url``, streamed, at most :data:`MAX_BYTES`; network and HTTP failures become FetchError."""
    buffer = io.BytesIO()
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout_s, transport=transport) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchError(f"{url} answered HTTP {response.status_code}", hint="check the URL, or try later")
            for chunk in response.iter_bytes():
                buffer.write(chunk)
                if buffer.tell() > MAX_BYTES:
                    raise FetchError(f"{url} is larger than {MAX_BYTES // 2**20} MiB", hint="is it the right file?")
    except httpx.HTTPError as exc:
        raise FetchError(
            f"could not download {url}: {exc}", hint="this needs a network; or pass --from with a local mirror"
        ) from exc
    return buffer.getvalue()


def fetch(
    name: str, data_dir: Path, *, source: str | None = None, transport: httpx.BaseTransport | None = None
) -> tuple[Path, int, bool]:
    """Download dataset ``name`` (from upstream, or ``source``: a mirror URL of the same file) into ``data_dir``.
    Returns the file written, its item count, and whether the bytes matched the upstream hash."""
    upstream = UPSTREAM.get(name)
    if upstream is None:
        raise NotFoundError(f"no built-in dataset {name!r}", hint=f"one of: {', '.join(sorted(UPSTREAM))}")
    if upstream.convert is None:
        raise InputError(f"ponder cannot fetch {name!r} yet", hint=how_to_get(name))
    raw = download(source or upstream.url, transport=transport)
    verified = git_blob_sha1(raw) == upstream.blob_sha1
    if not verified and source is None:
        raise FetchError(
            f"{upstream.url} does not hold the expected file (git blob {upstream.blob_sha1[:12]}…)",
            hint="the upstream file changed or the download was altered; nothing was written",
        )
    try:
        rows = list(upstream.convert(raw))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise FetchError(f"the downloaded {name} file is not in its upstream format: {exc}") from exc
    if not rows:
        raise FetchError(f"the downloaded {name} file holds no items")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.jsonl.gz"
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(path)  # a reader never sees half a file
    return path, len(rows), verified
