"""The names strategies are known by (CLI `--strategy`, API, OpenAI-compatible model ids `ponder-<name>`).

One line per strategy; each owner adds its own line. Targets are imported only when the strategy is used.
"""

from ponder.agents._base import register

register("cot", "ponder.agents.cot:ChainOfThought", "chain of thought: reasoning then a typed answer")
register("sc", "ponder.agents.sc:SelfConsistency", "self-consistency: k sampled chains of thought, majority vote")
register("cok", "ponder.agents.cok:ChainOfKnowledge", "chain of knowledge: evidence triples, explanation, answer")
register("cok-f2", "ponder.agents.cok:VerifiedChainOfKnowledge", "chain of knowledge + F²-verification + rethinking")
register("mcts-code", "ponder.agents.mcts:MCTSCode", "MCTS over programs, rewarded by visible tests run in the sandbox")
register("mcts-math", "ponder.agents.mcts:MCTSMath", "MCTS over reasoning steps, sandbox-checked arithmetic, voting")
register("mcts-proof", "ponder.agents.mcts:MCTSProof", "MCTS over Coq tactics, every proof re-checked by coqc")
register("planner", "ponder.agents.planner:Planner", "dual-loop planner: subtasks solved with tools, plan refined")
register("react", "ponder.agents.planner:ReAct", "ReACT: one chain of tool calls on the whole task (no plan)")
register(
    "pot", "ponder.agents.pot:ProgramOfThought", "program of thought: a program run in the sandbox prints the answer"
)
register(
    "math",
    "ponder.agents.crosscheck:CrossCheckMath",
    "math word problems: a chain of thought and a program check each other; more of both when they disagree",
)
register("pot-sc", "ponder.agents.pot:ProgramOfThoughtSC", "program of thought, k sampled programs, majority vote")
register("cot-fs", "ponder.agents.cok:FewShotChainOfThought", "few-shot chain of thought (CoK exemplars as prose)")
