"""The names strategies are known by (CLI `--strategy`, API, OpenAI-compatible model ids `ponder-<name>`).

One line per strategy; each owner adds its own line. Targets are imported only when the strategy is used.
"""

from ponder.agents._base import register

register("cot", "ponder.agents.cot:ChainOfThought", "chain of thought: reasoning then a typed answer")
