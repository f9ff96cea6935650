"""Chain-of-Knowledge prompting (CoK-ET + CoK-EH): the constrained output schema, the packaged few-shot
exemplar sets, and the messages for a first attempt and for a rethinking round."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field

from ponder.agents._base import AnswerChoice, Task, TaskFamily, answer_model, conversation, render_question
from ponder.errors import ConfigError, InputError
from ponder.llm import ANSWER_MARKER, Message, assistant, system, user

SYSTEM = (
    "You answer with a chain of knowledge. First list in `evidence` the facts the answer depends on, each as a "
    "short triple (subject, relation, object); for a calculation use (expression, equals, result). Then write in "
    "`explanation` one or two sentences that derive the answer from those facts. Then give `answer`. "
    "Reply with a JSON object only."
)

# The free form (issue 39): the facts and the explanation in plain text, then the typed part (the triples F² checks and
# the answer) constrained after the reasoning, as think-then-answer does for CoT.
SYSTEM_FREE = (
    "You answer with a chain of knowledge. First list the facts the answer depends on, one per line as a short "
    "triple (subject, relation, object); for a calculation use (expression, equals, result). Then write one or two "
    "sentences that derive the answer from those facts. Finish with a line that starts with `Final answer:` "
    "followed by the answer."
)

EXEMPLAR_SETS = ("arithmetic", "multiple_choice", "yes_no", "symbolic")
FAMILY_SET: dict[TaskFamily, str] = {
    TaskFamily.number: "arithmetic",
    TaskFamily.choice: "multiple_choice",
    TaskFamily.yes_no: "yes_no",
    TaskFamily.string: "symbolic",
}


class EvidenceTriple(BaseModel):
    """One fact of the chain."""

    subject: str = Field(description="the entity or expression the fact is about (a few words)")
    relation: str = Field(description="the relation, e.g. IsA, AtLocation, UsedFor, CapableOf, HasProperty, equals")
    object: str = Field(description="the value or entity it relates to (a few words)")

    def render(self) -> str:
        return f"({self.subject}, {self.relation}, {self.object})"


def cok_output_model(task: Task, max_triples: int = 4, *, explanation: bool = True) -> type[BaseModel]:
    """``{evidence: [{subject, relation, object}], explanation, answer}`` with the answer typed per family; without
    ``explanation``, the free form's typed part written after its reasoning: ``{evidence, answer}``."""
    fields: dict[str, Any] = {
        "evidence": (
            list[EvidenceTriple],
            Field(min_length=1, max_length=max_triples, description="the facts needed, as triples"),
        )
    }
    if explanation:
        fields["explanation"] = (str, Field(description="one or two sentences deriving the answer from the evidence"))
    return answer_model("ChainOfKnowledge" if explanation else "ChainOfKnowledgeFacts", task, fields)


@cache
def load_exemplars(name: str) -> tuple[dict[str, Any], ...]:
    """A packaged exemplar set (``cok/exemplars/<name>.json``)."""
    if name not in EXEMPLAR_SETS:
        raise InputError(f"unknown exemplar set {name!r}", hint=f"choose one of: {', '.join(EXEMPLAR_SETS)}")
    try:
        text = resources.files("ponder.agents.cok").joinpath("exemplars", f"{name}.json").read_text("utf-8")
        data = json.loads(text)
        return tuple(data["exemplars"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"the packaged CoK exemplar set {name!r} is missing or broken: {exc}") from exc


def exemplars_for(task: Task) -> tuple[dict[str, Any], ...]:
    """The exemplar set of the task's family; open-ended and code tasks get none (zero-shot CoK)."""
    name = FAMILY_SET.get(task.family)
    return load_exemplars(name) if name else ()


def exemplar_task(ex: dict[str, Any], family: TaskFamily) -> Task:
    return Task(
        question=ex["question"],
        family=family,
        choices=[AnswerChoice.model_validate(c) for c in ex.get("choices", [])],
    )


def _reply(ex: dict[str, Any], free: bool) -> str:
    if not free:
        return json.dumps({"evidence": ex["evidence"], "explanation": ex["explanation"], "answer": ex["answer"]})
    facts = "\n".join(EvidenceTriple.model_validate(t).render() for t in ex["evidence"])
    answer = ("yes" if ex["answer"] else "no") if isinstance(ex["answer"], bool) else ex["answer"]
    return f"{facts}\n{ex['explanation']}\n{ANSWER_MARKER} {answer}"


def first_messages(
    task: Task, exemplars: tuple[dict[str, Any], ...] | list[dict[str, Any]], *, free: bool = False
) -> list[Message]:
    msgs = [system(SYSTEM_FREE if free else SYSTEM)]
    for ex in exemplars:
        msgs.append(user(render_question(exemplar_task(ex, task.family))))
        msgs.append(assistant(_reply(ex, free)))
    msgs.extend(conversation(task))
    msgs.append(user(render_question(task)))
    return msgs


def rethink_messages(
    task: Task,
    exemplars: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    kept: list[EvidenceTriple],
    corrections: list[str],
    dropped: list[EvidenceTriple],
    *,
    free: bool = False,
) -> list[Message]:
    """Ask again with the supported triples kept and the unsupported ones replaced by retrieved knowledge."""
    lines = [render_question(task), ""]
    if kept or corrections:
        lines.append("Checked knowledge (rely on it):")
        lines += [f"- {t.render()}" for t in kept]
        lines += [f"- {c}" for c in corrections]
    if dropped:
        lines.append("These earlier facts could not be verified; do not rely on them:")
        lines += [f"- {t.render()}" for t in dropped]
    lines.append("Rethink: give the evidence, the explanation and the answer again.")
    msgs = first_messages(task, exemplars, free=free)
    return [*msgs[:-1], user("\n".join(lines))]
