"""The embedded backend: a GGUF model run in process by llama.cpp (the default on a fresh machine).

- ``_model``: :class:`EmbeddedModel`, the :class:`~ponder.llm.ChatModel` (every call is a job of the scheduler)
- ``_scheduler``: the one decode path: in-flight batching of every call's sequences in one llama.cpp context
- ``_runtime``: the loaded model, its chat template and the per-sequence decoder the scheduler steps
- ``_constraints``: output constraints compiled to token masks (llguidance, outlines, llama.cpp grammars)
- ``_calibration``: what a step of r rows costs on this host, measured once per build and model
- ``_prompt_cache``, ``_runtime_check``, ``_model_files``, ``_weight_layout``: the KV cache kept in RAM, the check
  that this llama.cpp build runs on this CPU, the default model's files, and its weights' layout
"""

from ponder.llm.embedded._model import BatchingOptions, EmbeddedModel

__all__ = ["BatchingOptions", "EmbeddedModel"]
