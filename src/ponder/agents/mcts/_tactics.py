"""Tactics that can apply (issue 38): a grammar for the next Coq tactic, built from the live proof state.

Of the failed steps of ``mcts-proof``'s searches, 42 % named a hypothesis or lemma that did not exist at that point
and 10 % were not Coq at all (docs/results/execution). Each node's next tactic is therefore generated under a
grammar that only names what exists there: the hypotheses of the first goal, the variables its goal still
quantifies (``induction n`` introduces them), the constants it mentions, and the lemmas Coq's ``Search`` finds for
them (capped, ranked by how many of the goal's constants they mention); fresh names (``intros``, ``as [|n IH]``) are
free identifiers. The tactic language covers what the standard library's proofs of Bool.v and List.v use.

The grammar is GBNF: llama.cpp's sampler, llguidance (the embedded engine) and vLLM's xgrammar all read it. Written
here because no library builds grammars from a proof assistant's state; the parsing is of Coq's own printed goals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

_IDENT = r"[A-Za-z_][A-Za-z0-9_']*"
_HYP_LINE = re.compile(rf"^\s*({_IDENT}(?:\s*,\s*{_IDENT})*)\s*:\s*(.+)$")
_SEARCH_LINE = re.compile(rf"^({_IDENT}(?:\.{_IDENT})*)\s*:\s*(.*)$")
_KEYWORDS = frozenset(
    [
        "forall",
        "exists",
        "fun",
        "match",
        "with",
        "end",
        "let",
        "in",
        "if",
        "then",
        "else",
        "as",
        "return",
        "Type",
        "Prop",
        "Set",
        "fix",
        "cofix",
        "struct",
    ]
)
SIMPLE = (
    "reflexivity", "auto", "trivial", "easy", "discriminate", "congruence", "assumption", "contradiction", "split",
    "left", "right", "f_equal", "tauto", "intuition", "lia", "subst", "constructor", "symmetry", "exfalso",
    "simpl", "intros", "intro", "firstorder",
)  # fmt: skip
MAX_LEMMAS = 40


@dataclass
class ProofState:
    """The first goal of a state: its hypotheses' names, the variables its goal quantifies, the constants used."""

    hypotheses: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    constants: list[str] = field(default_factory=list)
    goal: str = ""


def parse_state(goals: str) -> ProofState:
    """Coq's ``Show.`` output (``N goals``, hypotheses ``name : type``, a ``====`` rule, the goal) as a state."""
    lines = goals.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.strip().startswith("====")), None)
    if rule is None:
        return ProofState()
    hypotheses: list[str] = []
    types: list[str] = []
    for line in lines[:rule]:
        m = _HYP_LINE.match(line)
        if m and not line.strip().endswith("goals") and not re.match(r"^\s*\d+ goals?", line):
            hypotheses += [name.strip() for name in m.group(1).split(",")]
            types.append(m.group(2))
    goal_lines = []
    for line in lines[rule + 1 :]:
        if not line.strip() or line.strip().startswith("goal "):
            break
        goal_lines.append(line.strip())
    goal = " ".join(goal_lines)
    variables = [v for v in quantified(goal) if v not in hypotheses]
    local = set(hypotheses) | set(variables) | set(quantified_all(goal))
    constants = []
    for text in [*types, goal]:
        for name in re.findall(_IDENT, text):
            if name not in local and name not in _KEYWORDS and name not in constants and not name[0].isdigit():
                constants.append(name)
    return ProofState(hypotheses=hypotheses, variables=variables, constants=constants, goal=goal)


def quantified(goal: str) -> list[str]:
    """The names the goal's leading ``forall`` binds (``forall (a b : bool) (l : list A), ...`` -> a, b, l)."""
    m = re.match(r"^\s*forall\s+(.*)$", goal)
    if not m:
        return []
    return _binder_names(_until_comma(m.group(1)))


def quantified_all(goal: str) -> list[str]:
    """Every name bound by a ``forall``/``exists``/``fun`` in the goal (never constants)."""
    names: list[str] = []
    for m in re.finditer(r"\b(?:forall|exists|fun)\s+", goal):
        names += _binder_names(_until_comma(goal[m.end() :]))
    return names


def _until_comma(text: str) -> str:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif (ch == "," and depth == 0) or (text.startswith("=>", i) and depth == 0):
            return text[:i]
    return text


def _binder_names(binders: str) -> list[str]:
    groups = re.findall(r"\(([^()]*)\)", binders) or [binders]
    names: list[str] = []
    for group in groups:
        before = group.split(":", 1)[0]
        names += [n for n in re.findall(_IDENT, before) if n not in _KEYWORDS]
    return names


def ltac_names(prelude: str) -> list[str]:
    """The tactics a file defines for its own proofs (``Ltac destr_bool := ...``), usable at any state after them."""
    return list(dict.fromkeys(re.findall(rf"^\s*Ltac\s+({_IDENT})", prelude, re.MULTILINE)))


def parse_search(output: str) -> list[tuple[str, str]]:
    """``Search``'s output (``name: type`` at the start of a line, continued on indented lines) as (name, type)."""
    found: list[tuple[str, str]] = []
    for line in output.splitlines():
        m = _SEARCH_LINE.match(line)
        if m:
            found.append((m.group(1), m.group(2)))
        elif found and line.startswith(" "):
            found[-1] = (found[-1][0], f"{found[-1][1]} {line.strip()}".strip())
    return found


def rank_lemmas(found: list[tuple[str, str]], constants: list[str], limit: int = MAX_LEMMAS) -> list[str]:
    """Lemma names, those mentioning more of the goal's constants first, then shorter statements; at most
    ``limit``."""
    wanted = set(constants)
    scored = []
    for name, statement in dict(found).items():
        if "." in name:  # a qualified name: the short one is in scope too when it is imported
            name = name.rsplit(".", 1)[1]
        used = wanted & set(re.findall(_IDENT, statement))
        scored.append((-len(used), len(statement), name))
    return list(dict.fromkeys(name for _, _, name in sorted(scored)))[:limit]


def _alternatives(names: list[str]) -> str:
    return " | ".join(f'"{n}"' for n in dict.fromkeys(names))


def tactic_grammar(state: ProofState, lemmas: list[str], tactics: Sequence[str] = ()) -> str:
    """The GBNF grammar of one tactic sentence (steps chained with ``;``, ``; [a | b]`` or a few sentences) that
    names only what exists at ``state``: hypotheses, quantified variables, the goal's constants, ``lemmas``, and
    the file's own tactics (``tactics``: its ``Ltac`` names)."""
    variables = [*state.hypotheses, *state.variables]
    atoms = [*variables, *state.constants, *lemmas]
    steps = [f'"{t}"' for t in SIMPLE]
    rules = [
        'root ::= bullet? chain (". " chain)* "."',
        'bullet ::= ("-" | "+" | "*") " "',
        'chain ::= step (";" " "? (step | branches))*',
        'branches ::= "[" " "? chain? (" "? "|" " "? chain?)* " "? "]"',
        "fresh ::= [a-zA-Z_] [a-zA-Z0-9_']*",
        'pat ::= fresh | "?" | "_" | "->" | "<-" | pattern',
        'names ::= (pat (" " pat)*)?',
        'pattern ::= "[" " "? names (" "? "|" " "? names)* " "? "]"',
        'intro ::= ("intros" | "intro") (" " pat)+',
    ]
    steps += ["intro", '"now " step', '"repeat " step', '"try " step', '"cbn"', '"symmetry"',
              '("auto" | "eauto" | "intuition") " with " fresh']  # fmt: skip
    if tactics:
        rules.append(f"ltac ::= {_alternatives(list(tactics))}")
        steps.append("ltac")
    if variables:
        rules.append(f"var ::= {_alternatives(variables)}")
        rules.append("dvar ::= var | [0-9]+" + (' | "(" term ")"' if atoms else ""))
        steps += ['"destruct " dvar ("," " "? dvar)* (" as " pattern)? (" eqn:" fresh)?',
                  '"induction " dvar (" as " pattern)? (" using " atom)?', '"case " dvar', '"elim " dvar',
                  '"generalize dependent " var', '"revert " var (" " var)*']  # fmt: skip
    if state.hypotheses:
        rules.append(f"hyp ::= {_alternatives(state.hypotheses)}")
        rules.append('where ::= " in " hyp (" " hyp)*')
        steps += ['"inversion " hyp', '"simpl" where', '"cbn" where', '"symmetry" where', '"clear " hyp (" " hyp)*',
                  '"specialize (" term ")"', '"apply " term where (" as " pattern)?']  # fmt: skip
    if atoms:
        rules.append(f"atom ::= {_alternatives(atoms)}")
        rules.append('term ::= atom (" " arg)* | "(" term ")"')
        rules.append('arg ::= atom | "_" | [0-9]+ | "(" term ")"')
        rules.append('rw ::= ("<- " | "<-" | "!" | [0-9]+ " ")? term')
        where = " where?" if state.hypotheses else ""
        rules.append(f'rewrite ::= "rewrite " rw ("," " "? rw)*{where} (" by " step)?')
        steps += [
            "rewrite",
            '"apply " term ("," " "? term)*',
            '"eapply " term',
            '"exact " term',
            '"exists " arg',
            '"pose proof " term',
        ]
    if state.constants:
        rules.append(f"const ::= {_alternatives(state.constants)}")
        steps.append('"unfold " const ("," " "? const)*')
    rules.insert(1, "step ::= " + " | ".join(steps))
    return "\n".join(rules) + "\n"


class _ByteTokenizer:
    """Single bytes as tokens (llguidance's tokenizer protocol): enough to run a grammar over a text."""

    def __init__(self) -> None:
        self.eos_token_id = 256
        self.bos_token_id = None
        self.tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        self.special_token_ids = [256]

    def __call__(self, text: str | bytes) -> list[int]:
        return list(text.encode() if isinstance(text, str) else text)


def accepts(grammar: str, text: str) -> bool:
    """Whether ``text`` is a sentence of ``grammar`` (GBNF), checked by llguidance, the engine that enforces it."""
    from llguidance import LLMatcher, grammar_from

    matcher = LLMatcher(_byte_tokenizer(), grammar_from("grammar", grammar), log_level=0)
    return bool(matcher.consume_tokens(list(text.encode()))) and matcher.is_accepting() and not matcher.is_error()


@cache
def _byte_tokenizer() -> Any:
    from llguidance import LLTokenizer, TokenizerWrapper

    return LLTokenizer(TokenizerWrapper(_ByteTokenizer()))
