"""How much of the standard library's own proofs the tactic grammar can write (issue 38): every tactic sentence of
the original proofs of Bool.v and List.v, checked against the grammar's tactic *forms* (each sentence's own
identifiers standing in for the hypotheses, variables, constants and lemmas a state would offer, so only the
forms are measured, not the names). No model, no Coq: the grammar runs in llguidance over a byte tokenizer.

    python benchmarks/tactic_coverage.py            # prints the share covered, the forms missed; last line JSON
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from ponder.agents.mcts._tactics import ProofState, accepts, ltac_names, tactic_grammar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcts_coq_lemmas import load_lemmas

FILES = ["Bool/Bool.v", "Lists/List.v"]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_']*(?:\.[A-Za-z_][A-Za-z0-9_']*)*")  # qualified names too


def covered(sentence: str, ltacs: list[str]) -> bool:
    names = list(dict.fromkeys(_IDENT.findall(sentence)))
    state = ProofState(hypotheses=names, variables=[], constants=names, goal="x")
    return accepts(tactic_grammar(state, names, ltacs), sentence)


def main() -> dict[str, object]:
    lemmas = load_lemmas(None, FILES)
    total = ok = proofs_ok = 0
    missed: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for lemma in lemmas:
        all_ok = True
        ltacs = ltac_names(lemma["prelude"])
        for sentence in lemma["original_proof"]:
            if sentence in ("Proof.", "Qed.") or sentence.startswith("Proof "):
                continue
            total += 1
            if covered(sentence, ltacs):
                ok += 1
            else:
                all_ok = False
                head = re.sub(r"^[-+*]\s*", "", sentence).split()[0].rstrip(".;")
                missed[head] += 1
                examples.setdefault(head, sentence)
        proofs_ok += all_ok
    print(f"{len(lemmas)} proofs of {', '.join(FILES)}: {ok}/{total} tactic sentences ({ok / total:.1%}) in the "
          f"grammar's forms; {proofs_ok} proofs ({proofs_ok / len(lemmas):.1%}) entirely")  # fmt: skip
    for head, count in missed.most_common(15):
        print(f"  missed {count:3d}  {head:16s} e.g. {examples[head][:90]}")
    return {
        "proofs": len(lemmas),
        "sentences": total,
        "covered": round(ok / total, 4),
        "proofs_covered": round(proofs_ok / len(lemmas), 4),
        "missed": dict(missed.most_common(15)),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
