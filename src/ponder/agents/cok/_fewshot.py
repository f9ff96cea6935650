"""Few-shot chain of thought from the CoK exemplar sets: the same questions and answers CoK is shown, with the
evidence written as prose reasoning. CoT-FS and CoK then differ only in the evidence-triple format, which makes
the pair a controlled comparison."""

from __future__ import annotations

from typing import Any, ClassVar

from ponder.agents._base import Task, render_question
from ponder.agents.cok._prompt import exemplar_task, exemplars_for
from ponder.agents.cot import ChainOfThought
from ponder.llm import Message


def as_cot_exemplar(ex: dict[str, Any], task: Task) -> dict[str, Any]:
    facts = "; ".join(f"{t['subject']} {t['relation']} {t['object']}" for t in ex["evidence"])
    return {
        "question": render_question(exemplar_task(ex, task.family)),
        "reasoning": f"{facts}. {ex['explanation']}",
        "answer": ex["answer"],
    }


class FewShotChainOfThought(ChainOfThought):
    name: ClassVar[str] = "cot-fs"
    description: ClassVar[str] = "few-shot chain of thought with the packaged exemplars of the task's family"

    def messages(self, task: Task) -> list[Message]:
        if self.options.exemplars:
            return super().messages(task)
        exemplars = [as_cot_exemplar(ex, task) for ex in exemplars_for(task)]
        return ChainOfThought(exemplars=exemplars, form=self.options.form).messages(task)
