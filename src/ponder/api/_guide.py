"""Each built-in strategy in plain words, for people choosing one in the chat UI (``GET /strategies``): what it is
good for and a question it suits. The research names and options stay in ``description`` and ``options_schema``."""

from __future__ import annotations

from typing import NamedTuple

from ponder.agents import Task
from ponder.config import Backend, Settings
from ponder.errors import PayloadTooLarge


class Guide(NamedTuple):
    title: str
    good_for: str
    example: str


GUIDES: dict[str, Guide] = {
    "cot": Guide("Think step by step", "most questions; the quickest", "A train leaves at 3 pm and takes 2.5 h. When?"),
    "sc": Guide(
        "Think several times, keep the answer most agree on",
        "questions where one try is often wrong; about 5 times slower than cot",
        "How many weekdays are there in March 2027?",
    ),
    "math": Guide(
        "Math: reason and compute, check one against the other",
        "word problems with numbers; a program checks the arithmetic",
        "Tom buys 3 bags of 12 apples and eats 5. How many are left?",
    ),
    "pot": Guide(
        "Math by writing a small program", "calculations; the program runs in the sandbox", "What is 17% of 2,340?"
    ),
    "pot-sc": Guide(
        "Math by several programs, keep the answer most agree on",
        "harder calculations; slower than pot",
        "A loan of 12,000 at 4% a year compounded monthly: what after 3 years?",
    ),
    "cok": Guide(
        "Answer from known facts",
        "common-sense and science questions; looks facts up in the knowledge base first",
        "Do penguins live at the North Pole?",
    ),
    "cok-f2": Guide(
        "Answer from known facts, then double-check them",
        "fact questions where being right matters more than speed",
        "Which metal is liquid at room temperature?",
    ),
    "cot-fs": Guide(
        "Think step by step, following worked examples",
        "questions like the packaged examples (arithmetic, yes/no, choices)",
        "Is a tomato a fruit?",
    ),
    "mcts-code": Guide(
        "Write code, test it, keep the version that works",
        "programming tasks with examples; runs the code in the sandbox",
        "Write a Python function that returns the n-th prime.",
    ),
    "mcts-math": Guide(
        "Math by exploring several solution paths",
        "multi-step math where the first idea is often wrong; slow",
        "How many ways can 8 people sit at a round table?",
    ),
    "mcts-proof": Guide(
        "Prove a Coq lemma", "formal proofs in Coq; each proof is checked by Coq", "forall b, negb (negb b) = b."
    ),
    "planner": Guide(
        "Use tools, and plan when a first try fails (an agent)",
        "tasks with several steps: files, code, search; may ask you questions; minutes, not seconds",
        "Download nothing, but write a CSV of the first 10 squares and sum the column.",
    ),
    "react": Guide(
        "Use tools step by step (an agent without a plan)",
        "shorter tool tasks: run code, read files, search",
        "Count the lines of every .py file in the workspace.",
    ),
}


# What a question may hold when the model's context is known (the embedded backend): the context less room for the
# strategy's instructions and its reasoning (1,024 tokens), at 3 characters a token (English prose runs ~4; code and
# numbers fewer), so a question the page accepts fits.
RESERVED_TOKENS = 1024
CHARS_PER_TOKEN = 3


def question_limit(settings: Settings) -> tuple[int | None, int | None]:
    """(the model's context in tokens, the longest question in characters), or Nones when the server cannot know."""
    if settings.llm.backend is not Backend.embedded:
        return None, None
    tokens = settings.llm.n_ctx
    return tokens, max(tokens - RESERVED_TOKENS, 256) * CHARS_PER_TOKEN


def check_question_size(task: Task, settings: Settings) -> None:
    """Refuse, in words a person understands, a question (with its conversation) the model cannot read."""
    _, limit = question_limit(settings)
    if limit is None:
        return
    size = len(task.question) + len(task.context or "") + sum(len(t.content) for t in task.conversation)
    if size > limit:
        raise PayloadTooLarge(
            f"This question is too long for the model: {size:,} characters with the conversation before it, "
            f"and it can read about {limit:,}.",
            hint="shorten the question, or start a new conversation so the earlier turns are not sent",
        )
