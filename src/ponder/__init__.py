"""ponder: LLMs that reason, search and act safely."""

__version__ = "0.1.0"
