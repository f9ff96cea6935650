"""Monte Carlo tree search over LLM steps with execution-checked rewards.

The engine (:class:`MCTS`) is generic: a :class:`Domain` proposes children of a node (k candidates from one
model request), scores new nodes (tests run in the sandbox, arithmetic executed, Coq's verdict) and names the
final-answer rule. Domains: code (``mcts-code``), math (``mcts-math``) and formal proof (``mcts-proof``).
Hidden tests and gold answers never reach a search; :mod:`ponder.agents.mcts.scoring` holds the scorer that
runs hidden tests after the search has chosen.
"""

from ponder.agents.mcts._engine import (
    MCTS,
    Budget,
    Candidate,
    CountingModel,
    Domain,
    Evaluation,
    SearchConfig,
    SearchOutcome,
)
from ponder.agents.mcts._pool import SessionPool
from ponder.agents.mcts._sandbox import CommandRun, TestRun, run_command, run_tests
from ponder.agents.mcts._strategies import MCTSCode, MCTSMath, MCTSProof, MCTSStrategy
from ponder.agents.mcts._tree import FinalRule, Node, Tree

__all__ = [
    "MCTS",
    "Budget",
    "Candidate",
    "CommandRun",
    "CountingModel",
    "Domain",
    "Evaluation",
    "FinalRule",
    "MCTSCode",
    "MCTSMath",
    "MCTSProof",
    "MCTSStrategy",
    "Node",
    "SearchConfig",
    "SearchOutcome",
    "SessionPool",
    "TestRun",
    "Tree",
    "run_command",
    "run_tests",
]
