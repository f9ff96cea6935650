"""Chain-of-Knowledge reasoning: evidence triples + explanation + typed answer, F²-verification, rethinking."""

from ponder.agents.cok._compute import Computed, check_computable, evaluate
from ponder.agents.cok._fewshot import FewShotChainOfThought
from ponder.agents.cok._prompt import EXEMPLAR_SETS, EvidenceTriple, cok_output_model, exemplars_for, load_exemplars
from ponder.agents.cok._strategy import ChainOfKnowledge, VerifiedChainOfKnowledge
from ponder.agents.cok._verify import (
    Embedder,
    EmbeddingJudge,
    FactChecker,
    FaithfulnessJudge,
    LLMJudge,
    TripleCheck,
    Verdict,
    combine,
)

__all__ = [
    "EXEMPLAR_SETS",
    "ChainOfKnowledge",
    "Computed",
    "Embedder",
    "EmbeddingJudge",
    "EvidenceTriple",
    "FactChecker",
    "FaithfulnessJudge",
    "FewShotChainOfThought",
    "LLMJudge",
    "TripleCheck",
    "Verdict",
    "VerifiedChainOfKnowledge",
    "check_computable",
    "cok_output_model",
    "combine",
    "evaluate",
    "exemplars_for",
    "load_exemplars",
]
