"""A batch run in its own process, for the resume test: ``python -m tests.evals.resume_worker DATA RUN_DIR LOG DELAY``.

The model is a FunctionModel (the seam fake) that logs every question it is asked to LOG and answers after DELAY
seconds with the item's code, so the parent can kill the process midway and check what was asked again.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from ponder.agents import Context, TaskFamily
from ponder.evals import EvalRunner, load_dataset
from ponder.llm import ChatRequest
from tests.fakes import FunctionModel


async def main(data: Path, run_dir: Path, log: Path, delay: float) -> None:
    async def answer(request: ChatRequest) -> dict[str, str]:
        question = request.messages[-1].content
        with log.open("a") as f:
            f.write(question.splitlines()[-1] + "\n")
        await asyncio.sleep(delay)
        number = re.search(r"item (\d+)", question)
        return {"reasoning": "look it up", "answer": f"code-{number.group(1) if number else 'x'}"}

    dataset = load_dataset(str(data), family=TaskFamily.string)
    runner = EvalRunner(Context(FunctionModel(answer)), concurrency=2, progress=False)
    summary = await runner.run(dataset, "cot", run_dir)
    print(summary.model_dump_json())


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])))
