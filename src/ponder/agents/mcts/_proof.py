"""The formal-proof domain: tactic-level search judged by a real proof checker.

A node is a proof state (the goals the checker reports after the tactics so far), an action is one tactic the
model proposes. A tactic the checker rejects scores 0 and ends its branch; a tactic that leaves the goals as an
ancestor had them is pruned; fewer goals score higher; no goals left means the whole proof is compiled again from
scratch (``coqc``) and only then counts as verified. Checkers sit behind :class:`ProofChecker`, so a Lean checker
can replace Coq where a Lean toolchain is installed (none is installable here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, Field

from ponder.agents._base import Task
from ponder.agents.mcts._engine import Candidate, Evaluation
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._sandbox import run_command
from ponder.agents.mcts._tree import FinalRule, Node
from ponder.errors import InputError
from ponder.llm import ChatModel, ChatRequest, GrammarConstraint, Message, structured_n, system, user

# The example `induction l; simpl; auto.` is copied literally into lemmas without an `l` (the Coq sweep's commonest
# failed step), and adapted (`induction b; simpl; auto.`) into most of the proofs the 1.5B model finds: a prompt
# without it, asking for names from the goals instead, solved 2-3 of 20 lemmas instead of 5-6 (docs/results/execution,
# runs/superseded/), so it stays.
SYSTEM = (
    "You are an expert in the Coq proof assistant. Given a lemma and the current goals, propose the next tactic "
    "(one Coq tactic sentence ending with a period, e.g. `intros n.` or `induction l; simpl; auto.`). "
    "Reply with a JSON object only."
)
SYSTEM_GRAMMAR = (
    "You are an expert in the Coq proof assistant. Given a lemma and the current goals, reply with the next tactic "
    "only: one Coq tactic sentence ending with a period, e.g. `intros n.` or `induction l; simpl; auto.`"
)
SHOWN_FAILURES = 6  # the latest distinct tactics that failed at a state, shown when asking there again
RETRY_TEMPERATURE = 0.8  # a greedy ask that repeated a failed tactic is sampled from then on (greedy would repeat)

# Sentences that would leave the proof, add axioms or give up: a tactic containing one scores 0 before Coq runs.
_FORBIDDEN = re.compile(
    r"\b(admit|Admitted|give_up|Abort|Qed|Defined|Save|Axiom|Axioms|Parameter|Parameters|Hypothesis|Hypotheses|"
    r"Variable|Variables|Conjecture|Lemma|Theorem|Definition|Fixpoint|Require|Import|Export|Load|Declare|Drop|"
    r"Quit|Restart|Undo|Back|BackTo|Reset|Redirect|Cd|Extraction|Time|Timeout|Fail|Succeed)\b"
)


class TacticStep(BaseModel):
    """The next step of the proof."""

    tactic: str = Field(description="one Coq tactic sentence ending with a period", min_length=2, max_length=200)


@dataclass
class ProofCheck:
    ok: bool
    n_goals: int | None = None
    goals: str = ""
    error: str = ""


class ProofChecker(Protocol):
    """A proof assistant run in the sandbox: the goals after some tactics, and the check of a whole proof."""

    language: str

    async def state(self, prelude: str, statement: str, tactics: list[str]) -> ProofCheck: ...

    async def check(self, prelude: str, statement: str, tactics: list[str]) -> ProofCheck: ...

    async def search(self, prelude: str, constants: list[str]) -> list[tuple[str, str]]: ...


_GOALS = re.compile(r"^(\d+) goals?\b", re.MULTILINE)
_ERROR = re.compile(r"^Error:(.*)", re.MULTILINE | re.DOTALL)


def proof_script(prelude: str, statement: str, tactics: list[str], end: str) -> str:
    body = "\n".join(tactics)
    return f"{prelude.rstrip()}\n\n{statement.strip()}\nProof.\n{body}\n{end}\n"


class CoqChecker:
    """Coq through ``coqc`` in a sandbox session: each query compiles the prelude, the lemma and the tactics."""

    language = "coq"

    def __init__(self, pool: SessionPool, *, coqc: str = "coqc", timeout_s: float = 30.0) -> None:
        self.pool = pool
        self.coqc = coqc
        self.timeout_s = timeout_s

    async def _compile(self, text: str) -> tuple[bool, str]:
        async with self.pool.session() as session:
            run = await run_command(
                session,
                [self.coqc, "-q", "proof.v"],
                files={"proof.v": text},
                timeout_s=self.timeout_s,
                max_output=20_000,
            )
        if run.ok:
            return True, run.output
        match = _ERROR.search(run.output)
        message = match.group(1).strip() if match else (run.error or run.output.strip()[-300:])
        return False, " ".join(message.split())[:500]

    async def state(self, prelude: str, statement: str, tactics: list[str]) -> ProofCheck:
        ok, out = await self._compile(proof_script(prelude, statement, tactics, "Show.\nAbort."))
        if not ok:
            return ProofCheck(False, error=out)
        if "No more goals." in out:
            return ProofCheck(True, 0, "")
        matches = list(_GOALS.finditer(out))
        if not matches:
            if "unfocused goals" in out or "subproof is complete" in out:
                return ProofCheck(True, 1, out.strip()[-1500:])
            return ProofCheck(False, error=f"could not read the goals from Coq's output: {out[-300:]!r}")
        last = matches[-1]
        return ProofCheck(True, int(last.group(1)), out[last.start() :].strip()[:3000])

    async def check(self, prelude: str, statement: str, tactics: list[str]) -> ProofCheck:
        ok, out = await self._compile(proof_script(prelude, statement, tactics, "Qed."))
        return ProofCheck(ok, 0 if ok else None, error="" if ok else out)

    async def search(self, prelude: str, constants: list[str]) -> list[tuple[str, str]]:
        """The lemmas in scope after ``prelude`` that mention each constant (Coq's ``Search``), as (name, type)."""
        from ponder.agents.mcts._tactics import parse_search

        queries = "\n".join(f"Search {c}." for c in constants)
        ok, out = await self._compile(f"{prelude.rstrip()}\n\n{queries}\n")
        if not ok:
            raise ProofSearchFailed(out)
        return parse_search(out)


class ProofSearchFailed(Exception):
    """Coq's ``Search`` failed (a timeout, an unknown constant): the node's grammar goes without lemmas."""


class ProofDomain:
    final_rule = FinalRule.verified
    calls_per_candidate = 0

    def __init__(
        self,
        task: Task,
        pool: SessionPool,
        *,
        checker: ProofChecker | None = None,
        context_chars: int = 1500,
        max_tokens: int = 100,
        grammar: bool = False,
        lemmas: int = 40,
    ) -> None:
        if not task.question.strip().endswith("."):
            raise InputError(
                "a proof task's question must be the lemma's statement sentence, e.g. "
                "`Lemma add_0_r : forall n : nat, n + 0 = n.`"
            )
        self.task = task
        self.prelude = task.context or ""
        self.statement = task.question.strip()
        self.checker: ProofChecker = checker or CoqChecker(pool)
        self.context_chars = context_chars
        self.max_tokens = max_tokens
        self.grammar = grammar
        self.lemmas = lemmas
        self._found: dict[str, list[tuple[str, str]]] = {}  # Search results by constant, for the whole search

    def root_state(self) -> dict[str, Any]:
        return {"tactics": [], "goals": None, "n_goals": None}

    def messages(self, node: Node) -> list[Message]:
        state = node.state
        context = self.prelude[-self.context_chars :]
        parts = []
        if context.strip():
            parts.append(f"Earlier in the file:\n```coq\n{context.strip()}\n```")
        parts.append(f"Lemma to prove:\n```coq\n{self.statement}\nProof.\n" + "\n".join(state["tactics"]) + "\n```")
        parts.append(f"Current goals:\n{state['goals']}")
        failed = {c.action: c.reason for c in node.children if c.reward == 0.0 and c.reason}  # distinct, in order
        if failed:
            latest = list(failed.items())[-SHOWN_FAILURES:]
            parts.append("Tactics that already failed here:\n" + "\n".join(f"- {a} ({why[:200]})" for a, why in latest))
        if node.reflection:
            parts.append(f"Note: {node.reflection}")
        parts.append("Next tactic?")
        return [system(SYSTEM_GRAMMAR if self.grammar else SYSTEM), user("\n\n".join(parts))]

    async def expand(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[Candidate]:
        if node.state["goals"] is None:  # the root: ask the checker for the initial goals once
            start = await self.checker.state(self.prelude, self.statement, [])
            if not start.ok:
                raise InputError(f"the lemma does not start a proof: {start.error}", hint="check the prelude")
            node.state = {**node.state, "goals": start.goals, "n_goals": start.n_goals}
        if node.info.get("repeated"):  # asked greedily again, the model would propose the same tactic again
            temperature = max(temperature, RETRY_TEMPERATURE)
        proposed = await self._propose(model, node, k, seed=seed, temperature=temperature)
        out: list[Candidate] = []
        for text in proposed:
            tactic = " ".join(text.strip().split())
            if not tactic.endswith("."):
                tactic += "."
            if any(c.action == tactic for c in out):
                continue
            if any(c.action == tactic for c in node.children):
                node.info["repeated"] = node.info.get("repeated", 0) + 1
            out.append(Candidate(action=tactic, state={"tactics": [*node.state["tactics"], tactic]}))
        return out

    async def _propose(self, model: ChatModel, node: Node, k: int, *, seed: int, temperature: float) -> list[str]:
        """``k`` tactics: under the state's grammar (``grammar``), else as JSON ``{"tactic": ...}``. A backend
        without grammars, or a state whose grammar cannot be built, falls back to the JSON form for that node and
        says so in the node's info (shown in the tree)."""
        if self.grammar:
            grammar = await self._grammar(node)
            if grammar is not None and "grammar" in model.capabilities.constraints:
                request = ChatRequest(
                    messages=self.messages(node),
                    constraint=GrammarConstraint(grammar=grammar),
                    n=k,
                    temperature=temperature,
                    seed=seed,
                    max_tokens=self.max_tokens,
                )
                response = await model.complete(request)
                return [c.text for c in response.choices]
            if grammar is not None:
                node.info["grammar"] = f"free tactics: backend {model.name!r} takes no grammar"
        steps = await structured_n(
            model, self.messages(node), TacticStep, n=k, temperature=temperature, seed=seed, max_tokens=self.max_tokens
        )
        return [step.tactic for step in steps]

    async def _grammar(self, node: Node) -> str | None:
        """The tactic grammar at ``node``'s state; None (free tactics) when it cannot be built."""
        from ponder.agents.mcts._tactics import ltac_names, parse_state, rank_lemmas, tactic_grammar

        state = parse_state(str(node.state.get("goals") or ""))
        if not state.goal:
            node.info["grammar"] = "free tactics: the goals could not be read"
            return None
        missing = [c for c in state.constants if c not in self._found]
        if missing:
            try:
                found = await self.checker.search(self.prelude, missing)
            except ProofSearchFailed as exc:
                node.info["grammar"] = f"no lemmas: Search failed ({str(exc)[:200]})"
                found = []
            for constant in missing:
                self._found[constant] = [f for f in found if re.search(rf"\b{re.escape(constant)}\b", f[1])]
        candidates = [f for c in state.constants for f in self._found.get(c, [])]
        lemmas = rank_lemmas(candidates, state.constants, self.lemmas)
        node.info["lemmas"] = len(lemmas)
        return tactic_grammar(state, lemmas, ltac_names(self.prelude))

    def _seen(self, node: Node, goals: str) -> bool:
        return any(a.state.get("goals") == goals for a in node.path()[:-1])

    async def evaluate(self, model: ChatModel, node: Node) -> Evaluation:
        tactics: list[str] = node.state["tactics"]
        tactic = tactics[-1]
        bad = _FORBIDDEN.search(tactic)
        if bad:
            return Evaluation(0.0, terminal=True, reason=f"forbidden in a tactic: {bad.group(0)!r}")
        result = await self.checker.state(self.prelude, self.statement, tactics)
        if not result.ok:
            return Evaluation(0.0, terminal=True, reason=result.error)
        node.state = {"tactics": tactics, "goals": result.goals, "n_goals": result.n_goals}
        if result.n_goals == 0:
            final = await self.checker.check(self.prelude, self.statement, tactics)
            if not final.ok:
                return Evaluation(0.0, terminal=True, reason=f"the whole proof was rejected: {final.error}")
            proof = "Proof.\n" + "\n".join(tactics) + "\nQed."
            return Evaluation(1.0, terminal=True, verified=True, answer=proof, info={"n_goals": 0})
        if self._seen(node, result.goals):
            return Evaluation(0.0, terminal=True, reason="no progress: the goals are as before", info={})
        parent_goals = node.parent.state.get("n_goals") if node.parent is not None else None
        n = result.n_goals or 1
        reward = 0.5 / (1 + n) + (0.2 if parent_goals is not None and n < parent_goals else 0.0)
        return Evaluation(reward, info={"n_goals": n})

    async def reflect(self, model: ChatModel, node: Node) -> str:
        return node.reason
