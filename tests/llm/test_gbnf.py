"""The regex/choice -> GBNF translation accepts exactly what Python's ``re.fullmatch`` accepts (on ASCII).

An independent grammar engine judges the grammars: llguidance reads GBNF (``gbnf_to_lark``) and, with its byte
tokenizer, says whether a string is in the grammar's language. The real llama.cpp server runs the same grammars in
the conformance suite.
"""

from __future__ import annotations

import random
import re
import string
from typing import Any

import pytest

from ponder.llm._gbnf import choice_grammar, regex_grammar

llguidance: Any = pytest.importorskip("llguidance", reason="llguidance comes with the embedded extra")
gbnf_to_lark: Any = pytest.importorskip("llguidance.gbnf_to_lark").gbnf_to_lark

PATTERNS: dict[str, list[str]] = {
    r"[A-Z]{2}-\d{3}": ["QX-417", "AB-000"],
    r"^(yes|no|maybe)$": ["yes", "no", "maybe"],
    r"\d+(\.\d{1,2})?": ["7", "12.5", "0.25"],
    r"[a-z]+( [a-z]+){0,2}": ["one", "one two", "a b c"],
    r"(ab|c)*d?": ["", "ab", "cabd", "d"],
    r"[^,\n]{1,5},": ["x,", "hello,", " ,"],
    r"a.c": ["abc", "a c", "a.c"],
    r"\w+@\w+\.com": ["ada@lovelace.com", "x_1@y.com"],
    r'"[^"\\]*"': ['""', '"hi there"'],
    r"-?(0|[1-9]\d*)": ["0", "-12", "305"],
    r"\s?x": ["x", " x", "\tx"],
    r"[-+*/=]{2}": ["+-", "==", "*/"],
}


def _matcher(grammar: str) -> Any:
    tokenizer = llguidance.LLTokenizer("byte")
    lark = gbnf_to_lark(grammar)
    return llguidance.LLMatcher(tokenizer, llguidance.LLMatcher.grammar_from_lark(lark), log_level=0)


def _accepts(pristine: Any, text: str) -> bool:
    matcher = pristine.deep_copy()  # reset() does not clear an error state, a fresh copy does
    return bool(matcher.consume_tokens(list(text.encode()))) and bool(matcher.is_accepting())


def _candidates(pattern: str, positives: list[str], rng: random.Random) -> list[str]:
    alphabet = sorted(set("".join(positives)) | set(string.ascii_letters[:6] + string.digits[:4] + ' ,.-@\n\t"\\'))
    out = list(positives)
    for example in positives:  # near misses: drop, insert or substitute one character
        for i in range(len(example) + 1):
            out.append(example[:i] + example[i + 1 :])
            out.append(example[:i] + rng.choice(alphabet) + example[i:])
            out += [example[:i] + c + example[i + 1 :] for c in alphabet]
    out += ["".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(100)]
    return out


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_grammar_language_equals_regex_language(pattern: str) -> None:
    matcher = _matcher(regex_grammar(pattern))
    rng = random.Random(pattern)
    disagreements = []
    for text in _candidates(pattern, PATTERNS[pattern], rng):
        expected = re.fullmatch(pattern, text) is not None
        if _accepts(matcher, text) != expected:
            disagreements.append((text, expected))
    assert not disagreements, f"{pattern!r} -> {regex_grammar(pattern)!r} disagrees on {disagreements[:5]}"
    for positive in PATTERNS[pattern]:
        assert _accepts(matcher, positive)


def test_choice_grammar_language_is_exactly_the_choices() -> None:
    choices = ["red", "dark red", 'say "hi"', "a\\b", "ünï"]
    matcher = _matcher(choice_grammar(choices))
    for choice in choices:
        assert _accepts(matcher, choice)
    for other in ["", "re", "reds", "dark", "Red", "say hi", "a\\\\b"]:
        assert not _accepts(matcher, other)
