"""Request bodies per dialect, built by the pure ``build_payload`` (no network), and response parsing."""

from __future__ import annotations

import re

import pytest

from ponder.config import Backend
from ponder.errors import ModelRequestRejected, ModelServerError, UnsupportedConstraint
from ponder.llm import (
    ChatRequest,
    ChoiceConstraint,
    GrammarConstraint,
    JsonSchemaConstraint,
    RegexConstraint,
    user,
)
from ponder.llm._gbnf import choice_grammar, regex_grammar
from ponder.llm._openai_payload import parse_choices
from ponder.llm.openai_compat import build_payload

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
CLOSED = {**SCHEMA, "additionalProperties": False}
MESSAGES = [user("hi")]
GUIDED = re.compile(r"guided_")


def _body(dialect: Backend, **kw: object) -> dict[str, object]:
    return build_payload(ChatRequest(messages=MESSAGES, **kw), "m", dialect)  # type: ignore[arg-type]


def test_vllm_plain_body_is_exact() -> None:
    body = _body(Backend.vllm, n=2, stop=["\n"], seed=3, max_tokens=7, temperature=0.5, logprobs=True, top_logprobs=2)
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "top_p": 1.0,
        "max_completion_tokens": 7,
        "top_k": 0,
        "repetition_penalty": 1.0,
        "n": 2,
        "stop": ["\n"],
        "seed": 3,
        "logprobs": True,
        "top_logprobs": 2,
    }


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (
            JsonSchemaConstraint(json_schema=SCHEMA, name="Out"),
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "Out", "schema": SCHEMA, "strict": True},
                }
            },
        ),
        (RegexConstraint(pattern=r"\d+"), {"structured_outputs": {"regex": r"\d+"}}),
        (ChoiceConstraint(choices=["a", "b"]), {"structured_outputs": {"choice": ["a", "b"]}}),
        (GrammarConstraint(grammar="root ::= 'x'"), {"structured_outputs": {"grammar": "root ::= 'x'"}}),
    ],
)
def test_vllm_constraints_use_response_format_or_structured_outputs_never_guided(
    constraint: object, expected: dict[str, object]
) -> None:
    body = _body(Backend.vllm, constraint=constraint)
    assert {k: v for k, v in body.items() if k in ("response_format", "structured_outputs")} == expected
    assert not [k for k in body if GUIDED.match(k)], "vLLM silently ignores guided_* fields"
    assert "guided" not in str(body)


def test_openai_json_schema_is_strict_only_when_openai_accepts_it() -> None:
    loose = _body(Backend.openai, constraint=JsonSchemaConstraint(json_schema=SCHEMA))
    closed = _body(Backend.openai, constraint=JsonSchemaConstraint(json_schema=CLOSED))
    assert loose["response_format"]["json_schema"]["strict"] is False  # type: ignore[index]
    assert closed["response_format"]["json_schema"]["strict"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    "constraint",
    [RegexConstraint(pattern="x"), ChoiceConstraint(choices=["a"]), GrammarConstraint(grammar="root ::= 'x'")],
)
def test_openai_refuses_what_it_cannot_enforce(constraint: object) -> None:
    with pytest.raises(UnsupportedConstraint, match="openai"):
        _body(Backend.openai, constraint=constraint)


def test_llamacpp_body_json_object_schema_and_grammars() -> None:
    body = _body(Backend.llamacpp, constraint=JsonSchemaConstraint(json_schema=SCHEMA), n=3)
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert "n" not in body, "llama.cpp's server samples one choice per request"
    assert _body(Backend.llamacpp, constraint=ChoiceConstraint(choices=["a b", 'c"']))["grammar"] == (
        'root ::= "a\\x20b" | "c\\x22"\n'
    )
    assert _body(Backend.llamacpp, constraint=RegexConstraint(pattern=r"[A-Z]{2}-\d{3}"))["grammar"] == (
        'root ::= ([A-Z]){2} "\\x2D" ([0-9]){3}\n'
    )
    assert _body(Backend.llamacpp, constraint=GrammarConstraint(grammar='root ::= "x"'))["grammar"] == 'root ::= "x"'


@pytest.mark.parametrize(
    ("pattern", "grammar"),
    [
        (r"^(yes|no)$", 'root ::= (("y" "e" "s" | "n" "o"))'),
        (r"a.b", 'root ::= "a" [^\\n] "b"'),
        (r"(?s)a.b", 'root ::= "a" . "b"'),
        (r"x+?y*z?", 'root ::= ("x")+ ("y")* ("z")?'),
        (r"[^ab]{2,}q{1,4}", 'root ::= ([^ab]){2,} ("q"){1,4}'),
        (r"\w\s", "root ::= [0-9A-Za-z_] [\\x20\\t\\n\\r\\x0B\\x0C]"),
    ],
)
def test_regex_to_gbnf(pattern: str, grammar: str) -> None:
    assert regex_grammar(pattern) == f"root ::= {grammar.removeprefix('root ::= ')}\n"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"a(?=b)", r"\bword", r"(?i)abc", r"\D", r"a^b", r"[\W]"])
def test_regex_features_a_grammar_cannot_express_are_refused(pattern: str) -> None:
    with pytest.raises(UnsupportedConstraint):
        regex_grammar(pattern)


def test_invalid_regex_is_refused_with_the_parser_message() -> None:
    with pytest.raises(UnsupportedConstraint, match="invalid regex"):
        regex_grammar("(")


def test_choice_grammar_escapes_everything_but_letters_and_digits() -> None:
    assert choice_grammar(["é", "\\", "\U0001f600"]) == 'root ::= "\\xE9" | "\\x5C" | "\\U0001F600"\n'


def test_parse_choices_maps_finish_reasons_logprobs_and_usage() -> None:
    data = {
        "choices": [
            {"index": 1, "message": {"content": "b"}, "finish_reason": "length"},
            {
                "index": 0,
                "message": {"content": "a"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [{"token": "a", "logprob": -0.1, "top_logprobs": [{"token": "a", "logprob": -0.1}]}]
                },
            },
            {"index": 2, "message": {"content": None}, "finish_reason": "content_filter"},
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    choices, usage = parse_choices(data)
    assert [(c.index, c.text, c.finish_reason) for c in choices] == [
        (0, "a", "stop"),
        (1, "b", "length"),
        (2, "", "error"),
    ]
    assert choices[0].logprobs is not None and choices[0].logprobs[0].top == {"a": -0.1}
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 2)


@pytest.mark.parametrize("data", [{}, {"choices": []}, {"choices": [{"message": "oops"}]}, []])
def test_parse_choices_refuses_non_completions(data: object) -> None:
    with pytest.raises(ModelServerError):
        parse_choices(data)


def test_openai_dialect_sends_max_completion_tokens_and_no_vllm_fields() -> None:
    body = _body(Backend.openai, max_tokens=9)
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body
    assert "top_k" not in body and "repetition_penalty" not in body
    assert _body(Backend.llamacpp, max_tokens=9)["max_tokens"] == 9  # llama.cpp's server reads max_tokens


@pytest.mark.parametrize("dialect", [Backend.vllm, Backend.openai])
def test_more_than_four_stop_strings_are_refused_before_sending(dialect: Backend) -> None:
    assert _body(dialect, stop=list("abcd"))["stop"] == list("abcd")
    with pytest.raises(ModelRequestRejected, match="at most 4"):
        _body(dialect, stop=list("abcde"))
