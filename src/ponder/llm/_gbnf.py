"""Translate regex and choice constraints into llama.cpp GBNF grammars (for servers that only take ``grammar``).

Hand-written because no library does it: llama.cpp's own converter only handles regexes inside JSON strings (it
always adds the quotes). The regex is parsed with the standard library's own parser (``re._parser``, the module
behind ``re.compile``), so the grammar follows exactly the syntax tree Python sees. The translation is *sound*:
every string the grammar accepts fully matches the regex. Where Python's meaning is wider than ASCII (``\\d``,
``\\w``, ``\\s`` match Unicode classes) the grammar keeps the ASCII subset; constructs a grammar cannot express
(back-references, look-arounds, word boundaries, case-insensitive or multiline flags, negated classes such as
``\\D``) raise :class:`UnsupportedConstraint` before anything is sent.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

from ponder.errors import UnsupportedConstraint

# ``re._parser`` has no type stubs; it is imported by name so the type checker treats it as ``Any``.
_sre: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_CATEGORIES = {
    _c.CATEGORY_DIGIT: "0-9",
    _c.CATEGORY_WORD: "0-9A-Za-z_",
    _c.CATEGORY_SPACE: "\\x20\\t\\n\\r\\x0B\\x0C",
}
_BAD_FLAGS = re.IGNORECASE | re.MULTILINE | re.LOCALE


def _char(code: int) -> str:
    """One code point, escaped unless it is an ASCII letter or digit (safe inside literals and classes)."""
    ch = chr(code)
    if ch.isascii() and ch.isalnum():
        return ch
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return '"' + "".join(_char(ord(ch)) for ch in text) + '"'


def choice_grammar(choices: Sequence[str]) -> str:
    """A grammar whose language is exactly ``choices``."""
    return "root ::= " + " | ".join(literal(c) for c in choices) + "\n"


class _Translator:
    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.dotall = bool(flags & re.DOTALL)

    def unsupported(self, what: str) -> UnsupportedConstraint:
        return UnsupportedConstraint(
            f"regex {self.pattern!r} uses {what}, which a llama.cpp grammar cannot express",
            hint="rewrite the pattern without it, send a GrammarConstraint, or use the vllm or embedded backend",
        )

    def sequence(self, items: Sequence[tuple[Any, Any]], *, top: bool = False) -> str:
        parts: list[str] = []
        last = len(items) - 1
        for i, (op, av) in enumerate(items):
            if op is _c.AT:
                starts = av in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING) and i == 0
                ends = av in (_c.AT_END, _c.AT_END_STRING) and i == last
                if top and (starts or ends):
                    continue  # the whole reply must match anyway
                raise self.unsupported(f"the anchor {av}")
            parts.append(self.node(op, av))
        return " ".join(parts) if parts else '""'

    def node(self, op: Any, av: Any) -> str:
        if op is _c.LITERAL:
            return literal(chr(av))
        if op is _c.NOT_LITERAL:
            return f"[^{_char(av)}]"
        if op is _c.ANY:
            return "." if self.dotall else "[^\\n]"
        if op is _c.IN:
            return self.char_class(av)
        if op is _c.BRANCH:
            return "(" + " | ".join(self.sequence(list(alt)) for alt in av[1]) + ")"
        if op is _c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if (add_flags | del_flags) & (_BAD_FLAGS | re.DOTALL):
                raise self.unsupported("inline flags")
            return "(" + self.sequence(list(sub)) + ")"
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            low, high, sub = av
            inner = "(" + self.sequence(list(sub)) + ")"
            if high is _c.MAXREPEAT:
                return inner + ("*" if low == 0 else "+" if low == 1 else f"{{{low},}}")
            if (low, high) == (0, 1):
                return inner + "?"
            return inner + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")
        raise self.unsupported(f"the construct {op}")

    def char_class(self, items: Sequence[tuple[Any, Any]]) -> str:
        negate = False
        body: list[str] = []
        for op, av in items:
            if op is _c.NEGATE:
                negate = True
            elif op is _c.LITERAL:
                body.append(_char(av))
            elif op is _c.RANGE:
                body.append(f"{_char(av[0])}-{_char(av[1])}")
            elif op is _c.CATEGORY and av in _CATEGORIES:
                if negate:
                    raise self.unsupported("a Unicode class inside a negated set")
                body.append(_CATEGORIES[av])
            else:
                raise self.unsupported(f"the class item {op} {av}")
        return "[" + ("^" if negate else "") + "".join(body) + "]"


def regex_grammar(pattern: str) -> str:
    """A grammar accepting only strings that fully match ``pattern``."""
    try:
        parsed = _sre.parse(pattern)
    except re.error as exc:
        raise UnsupportedConstraint(f"invalid regex {pattern!r}: {exc}", hint="fix the pattern") from exc
    flags = int(parsed.state.flags)
    translator = _Translator(pattern, flags)
    if flags & _BAD_FLAGS:
        raise translator.unsupported("case-insensitive, multiline or locale flags")
    return "root ::= " + translator.sequence(list(parsed), top=True) + "\n"
