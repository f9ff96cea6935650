"""Output constraints for the embedded backend: each engine compiles a :data:`Constraint` into a token guide.

A *guide* masks the logits of the next token in place and follows the tokens sampled so far. Four engines:

- ``llguidance``: llguidance's ``LLMatcher`` driven directly, with the mask applied by :func:`apply_bitmask`.
  outlines' own llguidance processor (``outlines_llguidance``) applies the same mask with
  ``llguidance.numpy.apply_token_bitmask_inplace``, which expands the 152k-token bitmask through several
  temporary arrays (~2-8 ms a token here, 10-30 % of a 27 ms token). A lookup table turns the mask into an additive
  bias in two vectorised passes (~0.1-0.2 ms), which is what keeps constrained decoding near unconstrained speed.
  That is the only reason this thin processor exists; outlines remains the route for the other engines.
- ``outlines_llguidance`` / ``outlines_core``: outlines' logits processors for its llguidance and outlines_core
  backends (outlines_core's mask kernel is compiled by numba).
- ``llamacpp_grammar``: llama.cpp's native GBNF grammar sampler (JSON schema converted by
  ``llama_cpp.llama_grammar.json_schema_to_gbnf``); it runs inside the sampler chain, so it has no guide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from ponder.config import ConstraintEngine
from ponder.errors import ModelServerError, UnsupportedConstraint
from ponder.llm._types import ChoiceConstraint, Constraint, GrammarConstraint, JsonSchemaConstraint, RegexConstraint

if TYPE_CHECKING:
    from llama_cpp import Llama

Logits = npt.NDArray[np.float32]

SUPPORTED: dict[ConstraintEngine, frozenset[str]] = {
    ConstraintEngine.llguidance: frozenset({"json_schema", "regex", "choice", "grammar"}),
    ConstraintEngine.outlines_llguidance: frozenset({"json_schema", "regex", "choice", "grammar"}),
    ConstraintEngine.outlines_core: frozenset({"json_schema", "regex", "choice"}),
    ConstraintEngine.llamacpp_grammar: frozenset({"json_schema", "choice", "grammar"}),
}

# bit k of byte b set -> 0.0 (allowed), clear -> -inf (masked); row b holds the 8 biases of byte value b
_BIAS_LUT = np.array(
    [[0.0 if (b >> k) & 1 else -np.inf for k in range(8)] for b in range(256)],
    dtype=np.float32,
)


def apply_bitmask(logits: Logits, mask: npt.NDArray[np.int32], scratch: Logits) -> None:
    """Set ``logits[i] = -inf`` wherever bit ``i`` of ``mask`` is clear (little-endian bit order, as llguidance)."""
    np.take(_BIAS_LUT, mask.view(np.uint8), axis=0, out=scratch.reshape(-1, 8))
    n = logits.shape[0]
    np.add(logits, scratch[:n], out=logits)


class Guide(Protocol):
    """Per-sample constraint state."""

    def apply(self, logits: Logits, tokens: list[int]) -> None:
        """Mask ``logits`` (the next token's, 1-D, in place); ``tokens`` is prompt + sampled so far."""

    def advance(self, token: int) -> None: ...

    def is_finished(self) -> bool: ...


@dataclass
class Compiled:
    """A constraint compiled for one engine: a guide factory, or a GBNF grammar for llama.cpp's sampler."""

    engine: ConstraintEngine
    new_guide: Callable[[], Guide] | None = None
    gbnf: str | None = None
    # whether guides from ``new_guide`` may be used side by side (several samples decoded in one batch)
    concurrent: bool = True


def _unsupported(engine: ConstraintEngine, constraint: Constraint, why: str) -> UnsupportedConstraint:
    return UnsupportedConstraint(
        f"the embedded backend's {engine.value!r} engine cannot enforce this {constraint.kind!r} constraint: {why}",
        hint=(
            f"{engine.value!r} enforces {', '.join(sorted(SUPPORTED[engine]))}; choose another engine with "
            "PONDER_LLM__CONSTRAINT_ENGINE or simplify the constraint"
        ),
    )


def check_kind(engine: ConstraintEngine, constraint: Constraint) -> None:
    if constraint.kind not in SUPPORTED[engine]:
        raise _unsupported(engine, constraint, "this kind is not supported by the engine")


# llguidance's JSON defaults allow any whitespace, which a small model fills with newlines and indentation
_LLG_JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONES = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def strict_schema(schema: Any) -> Any:
    """A copy of ``schema`` where objects that list ``properties`` but say nothing of ``additionalProperties`` forbid
    them, as outlines_core, llama.cpp's converter and vLLM's xgrammar already do; llguidance follows the JSON Schema
    default (allowed), and a small model then invents fields until ``max_tokens`` runs out."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: strict_schema(v) for k, v in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [strict_schema(v) for v in out[key]]
    for key in _SCHEMA_ONES:
        if isinstance(out.get(key), dict):
            out[key] = strict_schema(out[key])
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def choice_regex(choices: list[str]) -> str:
    return "(" + "|".join(re.escape(c) for c in choices) + ")"


# --- llguidance, driven directly ----------------------------------------------------------------------------------


class _LLGuidanceGuide:
    def __init__(self, matcher: Any, vocab_size: int) -> None:
        import llguidance.numpy

        self._matcher = matcher
        self._fill = llguidance.numpy.fill_next_token_bitmask
        self._mask = llguidance.numpy.allocate_token_bitmask(1, vocab_size)
        self._scratch = np.empty(self._mask.shape[1] * 32, dtype=np.float32)

    def apply(self, logits: Logits, tokens: list[int]) -> None:
        self._fill(self._matcher, self._mask, 0)
        apply_bitmask(logits, self._mask[0], self._scratch)

    def advance(self, token: int) -> None:
        self._matcher.consume_token(token)
        if self._matcher.is_error():
            raise ModelServerError(
                f"llguidance rejected token {token}: {self._matcher.get_error()}",
                hint="this is a bug in constrained decoding; try PONDER_LLM__CONSTRAINT_ENGINE=outlines_core",
                retryable=False,
            )

    def is_finished(self) -> bool:
        return bool(self._matcher.is_stopped())


class LLGuidanceEngine:
    def __init__(self, llama: Llama) -> None:
        import llama_cpp
        import llguidance.llamacpp

        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._n_vocab = llama.n_vocab()
        self._tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(vocab, n_vocab=self._n_vocab)

    def grammar(self, constraint: Constraint) -> str:
        from llguidance import LLMatcher, grammar_from

        match constraint:
            case JsonSchemaConstraint():
                schema = json.dumps(strict_schema(constraint.json_schema))
                return str(LLMatcher.grammar_from_json_schema(schema, defaults=_LLG_JSON_OPTIONS))  # type: ignore[arg-type]
            case RegexConstraint():
                return str(LLMatcher.grammar_from_regex(constraint.pattern))
            case ChoiceConstraint():
                return str(grammar_from("choice", json.dumps(constraint.choices)))
            case GrammarConstraint():
                try:
                    return str(grammar_from("grammar", constraint.grammar))
                except ValueError as exc:
                    raise _unsupported(ConstraintEngine.llguidance, constraint, str(exc)) from exc

    def compile(self, constraint: Constraint) -> Compiled:
        from llguidance import LLMatcher

        try:
            grammar = self.grammar(constraint)
        except ValueError as exc:
            raise _unsupported(ConstraintEngine.llguidance, constraint, str(exc)) from exc
        error = LLMatcher.validate_grammar(grammar, self._tokenizer)
        if error:
            raise _unsupported(ConstraintEngine.llguidance, constraint, error)
        tokenizer, n_vocab = self._tokenizer, self._n_vocab
        return Compiled(
            ConstraintEngine.llguidance,
            new_guide=lambda: _LLGuidanceGuide(LLMatcher(tokenizer, grammar, log_level=0), n_vocab),
        )


# --- outlines (outlines_core and llguidance backends) -------------------------------------------------------------


class _OutlinesGuide:
    """Feeds outlines' logits processor; it reads the last sampled token from ``tokens`` on the next call."""

    def __init__(self, processor: Any) -> None:
        processor.reset()
        self._processor = processor

    def apply(self, logits: Logits, tokens: list[int]) -> None:
        ids = np.asarray(tokens, dtype=np.int64)
        out = self._processor(ids, logits)
        if not np.shares_memory(out, logits):
            np.copyto(logits, out)

    def advance(self, token: int) -> None:
        pass  # the processor sees the token in ``tokens`` on its next call

    def is_finished(self) -> bool:
        return False  # a finished outlines guide only allows EOS, which ends generation


class OutlinesEngine:
    # outlines_core's default JSON whitespace pattern admits runs of newlines that small models loop on
    _WHITESPACE = r"[ ]?"

    def __init__(self, llama: Llama, engine: ConstraintEngine) -> None:
        from outlines.backends.llguidance import LLGuidanceBackend
        from outlines.backends.outlines_core import OutlinesCoreBackend
        from outlines.models.llamacpp import LlamaCpp

        self._engine = engine
        model = LlamaCpp(llama)
        backend_cls = OutlinesCoreBackend if engine is ConstraintEngine.outlines_core else LLGuidanceBackend
        self._backend: Any = backend_cls(model)

    def compile(self, constraint: Constraint) -> Compiled:
        check_kind(self._engine, constraint)
        try:
            processor = self._processor(constraint)
        except (ValueError, NotImplementedError, TypeError, RuntimeError) as exc:
            raise _unsupported(self._engine, constraint, str(exc)) from exc
        # outlines keeps one processor per compiled constraint, stateful (it tracks the sequence it saw last), so
        # its guides cannot be interleaved; samples under it are decoded one after another
        return Compiled(self._engine, new_guide=lambda: _OutlinesGuide(processor), concurrent=False)

    def _processor(self, constraint: Constraint) -> Any:
        core = self._engine is ConstraintEngine.outlines_core
        match constraint:
            case JsonSchemaConstraint():
                if core:
                    schema = json.dumps(strict_schema(constraint.json_schema))
                    return self._backend.get_json_schema_logits_processor(schema, self._WHITESPACE)
                # outlines passes no options to llguidance; the schema's "x-guidance" key carries them
                guided = {**strict_schema(constraint.json_schema), "x-guidance": _LLG_JSON_OPTIONS}
                return self._backend.get_json_schema_logits_processor(json.dumps(guided))
            case RegexConstraint():
                return self._backend.get_regex_logits_processor(constraint.pattern)
            case ChoiceConstraint():
                return self._backend.get_regex_logits_processor(choice_regex(constraint.choices))
            case GrammarConstraint():
                return self._backend.get_cfg_logits_processor(constraint.grammar)


# --- llama.cpp's native grammar -----------------------------------------------------------------------------------


class LlamaGrammarEngine:
    def __init__(self, llama: Llama) -> None:
        import llama_cpp

        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)

    def compile(self, constraint: Constraint) -> Compiled:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        check_kind(ConstraintEngine.llamacpp_grammar, constraint)
        try:
            match constraint:
                case JsonSchemaConstraint():
                    gbnf = json_schema_to_gbnf(json.dumps(strict_schema(constraint.json_schema)))
                case ChoiceConstraint():
                    gbnf = "root ::= " + " | ".join(json.dumps(c) for c in constraint.choices)
                case _:
                    gbnf = constraint.grammar if isinstance(constraint, GrammarConstraint) else ""
        except (ValueError, KeyError, TypeError, NotImplementedError) as exc:
            raise _unsupported(ConstraintEngine.llamacpp_grammar, constraint, str(exc)) from exc
        self._validate(gbnf, constraint)
        return Compiled(ConstraintEngine.llamacpp_grammar, gbnf=gbnf)

    def _validate(self, gbnf: str, constraint: Constraint) -> None:
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf.encode(), b"root")
        if not sampler:
            raise _unsupported(ConstraintEngine.llamacpp_grammar, constraint, "llama.cpp could not parse the grammar")
        llama_cpp.llama_sampler_free(sampler)


Engine = LLGuidanceEngine | OutlinesEngine | LlamaGrammarEngine


def build_engine(llama: Llama, engine: ConstraintEngine) -> Engine:
    if engine is ConstraintEngine.llguidance:
        return LLGuidanceEngine(llama)
    if engine is ConstraintEngine.llamacpp_grammar:
        return LlamaGrammarEngine(llama)
    return OutlinesEngine(llama, engine)
