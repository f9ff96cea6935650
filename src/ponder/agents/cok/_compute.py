"""Triples that can be checked by computing them: calculations ``(expr, equals, result)`` and letter operations
``(word, last letter, x)``. Hand-written because no library judges a model's arithmetic claim from a triple; the
expression evaluator walks a restricted ``ast`` (numbers and + - * / // % ** only), never ``eval``."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_EQUALS = {"equals", "=", "==", "is", "equal", "equal to", "is equal to", "equals to", "gives", "results in"}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Computed:
    """The verdict on a computable triple: whether it holds, and the corrected statement."""

    correct: bool
    expected: str
    statement: str


def _clean(text: str) -> str:
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("$", "").replace("%", "")
    return re.sub(r"(?<=\d),(?=\d{3})", "", text).strip()


def evaluate(expression: str) -> float | None:
    """The value of a plain arithmetic expression, or None when it is not one (or has no operator)."""
    try:
        tree = ast.parse(_clean(expression), mode="eval")
    except SyntaxError:
        return None
    if not isinstance(tree.body, ast.BinOp | ast.UnaryOp):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        raise ValueError(f"not arithmetic: {ast.dump(node)[:40]}")

    try:
        value = walk(tree.body)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def first_number(text: str) -> float | None:
    match = _NUMBER.search(_clean(text))
    return float(match.group()) if match else None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) or math.isclose(a, b, abs_tol=0.005)


def check_arithmetic(subject: str, relation: str, obj: str) -> Computed | None:
    """``(expr, equals, number)`` or a field holding ``expr = number``; None when the triple is no calculation."""
    if relation.strip().lower() in _EQUALS:
        value, claimed = evaluate(subject), first_number(obj)
        if value is not None and claimed is not None:
            return Computed(
                correct=_same(value, claimed), expected=_fmt(value), statement=f"({subject}, equals, {_fmt(value)})"
            )
    for field in (subject, obj, f"{subject} {relation} {obj}"):
        if "=" in field:
            left, _, right = field.rpartition("=")
            left = left.rstrip("=").split(":")[-1]
            value, claimed = evaluate(left), first_number(right)
            if value is not None and claimed is not None:
                return Computed(
                    correct=_same(value, claimed),
                    expected=_fmt(value),
                    statement=f"{left.strip()} = {_fmt(value)}",
                )
    return None


def check_letters(subject: str, relation: str, obj: str) -> Computed | None:
    """``(word, last letter, x)`` / ``(word, first letter, x)``; None for any other relation."""
    rel = relation.strip().lower().removesuffix(" of")
    word = subject.strip().strip("\"'")
    if not word or rel not in {"last letter", "first letter"}:
        return None
    expected = word[-1] if rel == "last letter" else word[0]
    got = obj.strip().strip("\"'")
    return Computed(
        correct=got.casefold() == expected.casefold(), expected=expected, statement=f"({word}, {rel}, {expected})"
    )


def check_computable(subject: str, relation: str, obj: str) -> Computed | None:
    return check_arithmetic(subject, relation, obj) or check_letters(subject, relation, obj)
