"""Program of thought (Chen et al. 2022; Gao et al. 2023, PAL): the model writes a short Python program that prints
the answer, the ToolServer runs it under its limits, and the printed number is the answer, so the arithmetic is
done by Python, not by the model. A program that crashes, hangs or prints no number is shown its failure once and
asked for a repair. ``pot-sc`` samples ``k`` programs in one batched request and takes the majority vote over the
answers they printed; programs that failed count as failed, never as votes. With ``chains = m`` the vote also counts
the answers of m chains of thought sampled beside the programs (as ``sc`` samples them): on GSM8K the programs and
the prose chains were wrong on different items (``benchmarks/execution_votes.py``); off by default until measured
on items that played no part in choosing it (``execution.py --domain votes``).

The program travels as a fenced ``python`` block that the strategy extracts, not inside a JSON string: a small model
writes code far more reliably without JSON escaping (the same reason CoT reasons in free text, issue 24), and
what code consumes is checked by running it.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, model_validator

from ponder.agents._base import (
    BaseStrategy,
    Context,
    Options,
    StrategyResult,
    Task,
    TaskFamily,
    conversation,
    format_answer,
    render_question,
)
from ponder.agents._events import Event, FinalAnswer, LLMCall, StepStarted, ToolCalled, ToolReturned
from ponder.agents._select import Candidate, VoteOptions, candidate_of, choose
from ponder.agents.cot import ChainOfThought
from ponder.agents.mcts._sandbox import run_command
from ponder.agents.sc import sample_chains
from ponder.errors import InputError, PonderError, StrategyError
from ponder.llm import ChatRequest, Confidence, Costs, Message, MeteredModel, assistant, system, user
from ponder.tools import ToolSession

SYSTEM = (
    "You solve problems by writing a short Python program. Read the question, then write a program that computes "
    "the answer step by step with clearly named variables and prints only the final answer as a number (no units, "
    "no words). Use only the standard library. Reply with the program in one ```python code block."
)
REPAIR = (
    "Running your program failed: {why}\n{output}Fix the program. Reply with the whole corrected program in one "
    "```python code block; it must print only the final answer as a number."
)
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:\n```|$)", re.DOTALL)
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def extract_program(reply: str) -> str | None:
    """The program in a reply: its first fenced block, else the whole reply if it is Python; None if neither."""
    match = _FENCE.search(reply)
    code = match.group(1) if match else reply
    code = code.strip("\n")
    if not code.strip():
        return None
    try:
        ast.parse(code)
    except SyntaxError:
        return None if match is None else code  # a fenced block that does not parse is run: its error is the news
    return code


def printed_number(output: str) -> float | None:
    """The number on the last non-empty line a program printed (commas, a currency sign, a % are allowed)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return None
    match = _NUMBER.fullmatch(lines[-1].replace("$", "").replace("%", "").strip().rstrip("."))
    if match is None:
        return None
    try:
        value = float(match.group(0).replace(",", ""))
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # NaN and infinities are no answer


@dataclass
class Attempt:
    """One sample's program and what running it gave."""

    sample: int
    reply: str
    code: str | None = None
    answer: float | None = None
    error: str = ""
    output: str = ""
    repaired: bool = False
    confidence: Confidence | None = None  # of the sampled program (the model's own token distributions)

    def record(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "confidence": self.confidence.model_dump() if self.confidence is not None else None,
            "code": self.code,
            "answer": self.answer,
            "error": self.error,
            "output": self.output[-400:],
            "repaired": self.repaired,
        }


class PoTOptions(Options, VoteOptions):
    k: int = Field(default=1, ge=1, le=32, description="programs sampled together (more than 1: majority vote)")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="sampling temperature (0: greedy)")
    max_tokens: int = Field(default=400, ge=1, le=8192, description="longest program, in tokens")
    timeout_s: float = Field(default=10.0, gt=0.0, le=120.0, description="time limit of one program run")
    repair: bool = Field(default=True, description="show a failed program its failure once and run its repair")
    chains: int = Field(
        default=0,
        ge=0,
        le=32,
        description="chains of thought (as cot reasons, in plain text) sampled beside the programs, at the same "
        "temperature; their answers join the programs' vote (0: programs only)",
    )
    chain_max_tokens: int = Field(default=512, ge=1, le=16384, description="longest chain of thought, in tokens")

    @model_validator(mode="after")
    def _sampled_when_several(self) -> PoTOptions:
        if self.k > 1 and self.temperature <= 0:
            raise ValueError(f"k = {self.k} programs are sampled at a temperature above 0 (e.g. 0.7)")
        if self.chains > 1 and self.temperature <= 0:
            raise ValueError(f"{self.chains} chains of thought are sampled at a temperature above 0 (e.g. 0.7)")
        return self


class PoTSCOptions(PoTOptions):
    k: int = Field(default=5, ge=1, le=32, description="programs sampled together, majority vote over their output")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="sampling temperature")


class ProgramOfThought(BaseStrategy[PoTOptions]):
    """One program (greedy), run in the sandbox; a failure is fed back once for a repair."""

    name: ClassVar[str] = "pot"
    description: ClassVar[str] = (
        "program of thought: the model writes a program, the sandbox runs it, it prints the answer"
    )
    Options: ClassVar[type[PoTOptions]] = PoTOptions
    requires_toolserver: ClassVar[bool] = True

    def messages(self, task: Task) -> list[Message]:
        if task.family is not TaskFamily.number:
            raise InputError(
                f"{self.name} answers number questions; this one is {task.family.value}",
                hint="ask with family 'number', or use cot / sc for other answer types",
            )
        return [system(SYSTEM), *conversation(task), user(render_question(task))]

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        toolserver = self.toolserver(ctx, "runs the model's programs in the sandbox")
        messages = self.messages(task)
        model, start = ctx.metered()
        what = "a program" if self.options.k == 1 else f"{self.options.k} programs"
        yield StepStarted(name="write program", detail=f"{what}, run in the sandbox")
        # the chains are requested beside the programs (a batching backend decodes them together) and collected
        # after the programs ran; a run that ends early takes them down with it
        async with toolserver.session() as session:
            chains = asyncio.ensure_future(self._chains(model, task)) if self.options.chains else None
            try:
                async for event in self._programs_and_vote(task, session, model, start, messages, chains):
                    yield event
            finally:
                if chains is not None and not chains.done():
                    chains.cancel()
                elif chains is not None and not chains.cancelled():
                    chains.exception()  # retrieved: chains that failed while the programs' step failed are not lost

    async def _chains(
        self, model: MeteredModel, task: Task, k: int | None = None, temperature: float | None = None, seed: int = 0
    ) -> tuple[list[dict[str, Any]], Costs, float]:
        """``k`` chains of thought (default: the ``chains`` option, at the options' temperature) and what they cost
        (their own meter: the run's counts them too). Greedy chains take no seed: the request ``cot`` sends."""
        own = MeteredModel(model)
        t0 = time.perf_counter()
        temperature = self.options.temperature if temperature is None else temperature
        rows = await sample_chains(
            ChainOfThought(),  # the form measured best for the answer type, as cot and sc use
            own,
            task,
            k=self.options.chains if k is None else k,
            temperature=temperature,
            max_tokens=self.options.chain_max_tokens,
            seed=None if temperature == 0.0 else seed,
        )
        return rows, own.costs, time.perf_counter() - t0

    async def _programs_and_vote(
        self,
        task: Task,
        session: ToolSession,
        model: MeteredModel,
        start: float,
        messages: list[Message],
        chains_future: asyncio.Future[tuple[list[dict[str, Any]], Costs, float]] | None,
    ) -> AsyncIterator[Event]:
        attempts: list[Attempt] = []
        async for event in self.programs(
            session, model, messages, attempts, n=self.options.k, temperature=self.options.temperature
        ):
            yield event
        candidates = [Candidate(a.answer, "program", a.confidence, True) for a in attempts if a.answer is not None]
        details: dict[str, Any] = {
            "programs": [a.record() for a in attempts],
            "failed": sum(a.answer is None for a in attempts),
            "repaired": sum(a.repaired for a in attempts),
        }
        chains: list[dict[str, Any]] = []
        if chains_future is not None:
            try:
                chains, costs, seconds = await chains_future
            except PonderError as exc:  # failed chains fail their step; the programs still vote
                details["chains_error"] = exc.message
            else:
                yield LLMCall(
                    purpose=f"chains of thought x{self.options.chains}",
                    prompt_tokens=costs.prompt_tokens,
                    completion_tokens=costs.completion_tokens,
                    seconds=seconds,
                    output=chains,
                )
            details["chains"] = chains
            # after the programs': a tie goes to a program
            candidates += [candidate_of({**c, "answer": float(c["answer"])}, "cot") for c in chains]
        if not candidates:
            reasons = "; ".join(f"{a.sample}: {a.error}" for a in attempts)
            if "chains_error" in details:
                reasons += f"; chains of thought: {details['chains_error']}"
            raise StrategyError(f"no program printed a number ({reasons})"[:600], hint="see the run's tool calls")
        if len(candidates) > 1:
            sources = f"{len(attempts)} programs" + (f" and {len(chains)} chains of thought" if chains else "")
            yield StepStarted(name="vote", detail=f"{len(candidates)} answers from {sources}")
        selection = choose(TaskFamily.number, candidates, self.options)
        answer, votes = selection.answer, selection.votes()
        details["votes"] = votes
        details["selection"] = selection.model_dump(mode="json")
        best = max(votes.values())
        details["tie"] = sum(1 for v in votes.values() if v == best) > 1  # a vote's tie: the first program sampled
        winner = next((a for a in attempts if a.answer is not None and round(a.answer, 6) == round(answer, 6)), None)
        details["program"] = winner.code if winner else None
        if winner is not None:
            reasoning = f"```python\n{winner.code}\n```" if winner.code else None
        else:  # only chains of thought reached it
            reasoning = next(c["reasoning"] for c in chains if round(float(c["answer"]), 6) == round(answer, 6))
        result = StrategyResult(
            answer=answer,
            text=format_answer(task, answer),
            reasoning=reasoning,
            costs=model.costs,
            tool_calls=len(attempts) + details["repaired"],
            seconds=time.perf_counter() - start,
            details=details,
        )
        yield FinalAnswer(answer=answer, text=result.text, result=result.model_dump(mode="json"))

    async def programs(
        self,
        session: ToolSession,
        model: MeteredModel,
        messages: list[Message],
        attempts: list[Attempt],
        *,
        n: int,
        temperature: float,
        seed: int = 0,
        first: int = 0,
    ) -> AsyncIterator[Event]:
        """Write ``n`` programs in one request, run each in ``session`` (a failed one is shown its failure once and
        its repair runs, with ``repair``), appending them to ``attempts`` numbered from ``first``; yields the
        model calls and tool calls as they happen."""
        t0 = time.perf_counter()
        request = ChatRequest(
            messages=messages, n=n, temperature=temperature, max_tokens=self.options.max_tokens, seed=seed
        )
        response = await model.complete(request)
        yield LLMCall(
            purpose="write program",
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            seconds=time.perf_counter() - t0,
            output=[c.text for c in response.choices],
        )
        written = [
            Attempt(sample=first + i, reply=c.text, confidence=c.confidence) for i, c in enumerate(response.choices)
        ]
        attempts.extend(written)
        for attempt in written:
            async for event in self._execute(session, attempt):
                yield event
        failed = [a for a in written if a.answer is None]
        if not (self.options.repair and failed):
            return
        yield StepStarted(name="repair", detail=f"{len(failed)} of {len(written)} programs failed")
        t1 = time.perf_counter()
        before = model.costs.model_copy()
        replies = await _gather_repairs(model, messages, failed, temperature, self.options.max_tokens)
        yield LLMCall(
            purpose="repair",
            prompt_tokens=model.costs.prompt_tokens - before.prompt_tokens,
            completion_tokens=model.costs.completion_tokens - before.completion_tokens,
            seconds=time.perf_counter() - t1,
            output=replies,
        )
        for attempt, reply in zip(failed, replies, strict=True):
            attempt.reply, attempt.repaired = reply, True
            attempt.error = attempt.output = ""
            async for event in self._execute(session, attempt):
                yield event

    async def _execute(self, session: ToolSession, attempt: Attempt) -> AsyncIterator[Event]:
        attempt.code = extract_program(attempt.reply)
        call_id = f"p{attempt.sample}" + ("r" if attempt.repaired else "")
        group = f"program {attempt.sample + 1}"
        if attempt.code is None:
            attempt.error = "the reply holds no Python program"
            yield ToolReturned(call_id=call_id, tool="python", ok=False, error=attempt.error, group=group)
            return
        yield ToolCalled(call_id=call_id, tool="python", args={"code": attempt.code}, group=group)
        run = await run_command(
            session, ["python3", "-I", "-c", attempt.code], timeout_s=self.options.timeout_s, max_output=4000
        )
        attempt.output = run.output
        attempt.answer = printed_number(run.output) if run.ok else None
        if not run.ok:
            attempt.error = run.error or "the program failed"
        elif attempt.answer is None:
            attempt.error = "it printed no number" if not run.output.strip() else "its last line is not a number"
        yield ToolReturned(
            call_id=call_id,
            tool="python",
            ok=attempt.answer is not None,
            output={"stdout": run.output[-2000:]},
            error=attempt.error or None,
            seconds=run.seconds,
            group=group,
        )


async def _gather_repairs(
    model: Any, messages: list[Message], failed: list[Attempt], temperature: float, max_tokens: int
) -> list[str]:
    """One repair request per failed program, sent together (a batching backend decodes them at once)."""

    def request(attempt: Attempt) -> ChatRequest:
        tail = attempt.output.strip()[-800:]
        shown = f"Its output ended with:\n{tail}\n" if tail else ""
        follow_up = [
            *messages,
            assistant(attempt.reply),
            user(REPAIR.format(why=attempt.error, output=shown)),
        ]
        return ChatRequest(messages=follow_up, temperature=temperature, max_tokens=max_tokens, seed=attempt.sample)

    responses = await asyncio.gather(*(model.complete(request(a)) for a in failed))
    return [r.text for r in responses]


class ProgramOfThoughtSC(ProgramOfThought):
    """``k`` programs sampled together, each run (and repaired once), majority vote over the numbers they print."""

    name: ClassVar[str] = "pot-sc"
    description: ClassVar[str] = "program of thought, k sampled programs run in the sandbox, majority vote"
    Options: ClassVar[type[PoTOptions]] = PoTSCOptions
