"""ponder's settings: the one place that reads the environment.

Every value comes from a ``PONDER_*`` environment variable or a ``.env`` file in the working directory. Groups
nest with a double underscore: ``PONDER_LLM__BACKEND=openai``, ``PONDER_TOOLSERVER__MEMORY=512m``. Build
:class:`Settings` once at the edge (CLI, API start-up) and pass plain values inward; no module below reads the
environment.
"""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "ponder"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "ponder"


class Backend(StrEnum):
    embedded = "embedded"
    openai = "openai"
    vllm = "vllm"
    llamacpp = "llamacpp"


class ConstraintEngine(StrEnum):
    """How the embedded backend enforces an output constraint."""

    llguidance = "llguidance"  # llguidance's matcher with ponder's fast in-place mask (see llm/embedded/_constraints)
    outlines_llguidance = "outlines_llguidance"  # outlines' own llguidance logits processor
    outlines_core = "outlines_core"
    llamacpp_grammar = "llamacpp_grammar"


class WeightLayout(StrEnum):
    """How the embedded model's weights are laid out (see llm/embedded/_weight_layout)."""

    as_shipped = "as-shipped"
    q8_0_for_q6_k = "q8_0-for-q6_k"  # Q6_K tensors re-encoded as Q8_0: llama.cpp batches them faster on x86


class ToolChoiceMethod(StrEnum):
    probe = "probe"
    union = "union"


class LLMSettings(BaseModel):
    backend: Backend = Backend.embedded
    base_url: str | None = Field(default=None, description="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    api_key: SecretStr | None = None
    model: str | None = Field(default=None, description="model name sent to the server")
    model_path: Path | None = Field(default=None, description="GGUF file for the embedded backend")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="where the default model is assembled")
    n_ctx: int = 4096
    n_threads: int | None = Field(
        default=None, description="llama.cpp threads; default: every core on <= 2 cores, else all but one"
    )
    constraint_engine: ConstraintEngine = ConstraintEngine.llguidance
    prompt_cache_mb: int = Field(
        default=512,
        ge=0,
        description="embedded backend: MB of RAM for the KV caches of recent prompts, per llama.cpp context "
        "(0: only the last prompt's, in the context itself)",
    )
    batching: bool = Field(
        default=True,
        description="embedded backend: decode concurrent calls together in one llama.cpp batch (in-flight batching); "
        "off serves one call at a time",
    )
    max_sequences: int = Field(default=16, ge=1, le=64, description="embedded backend: sequences decoded together")
    kv_tokens: int = Field(
        default=16384,
        ge=512,
        description="embedded backend: KV cache cells shared by all batched sequences (~28 KB each for the default "
        "model); a call needs its prompt plus n x max_tokens of them",
    )
    prefill_chunk: int = Field(
        default=64,
        ge=1,
        description="embedded backend: prompt tokens evaluated per step while other calls decode (bounds how long "
        "a new long prompt delays running streams)",
    )
    max_queue: int = Field(default=256, ge=1, description="embedded backend: calls that may wait for a free sequence")
    draft_tokens: int = Field(
        default=8,
        ge=0,
        le=32,
        description="embedded backend: speculative decoding by prompt lookup for greedy calls: up to this many "
        "tokens that followed the last n-gram earlier in the prompt or reply are verified in one step (0: off); each "
        "greedy call drafts only as many as pay by this host's calibrated costs and its own acceptance so far",
    )
    weight_layout: WeightLayout = Field(
        default=WeightLayout.as_shipped,
        description="embedded backend: the model's weights as shipped, or its Q6_K tensors re-encoded as Q8_0 (made "
        "once beside the model, ~30 s, +105 MB for the default model): more tokens per second with many concurrent "
        "calls on x86 hosts, see the README's measurements",
    )
    calibrate: bool = Field(
        default=True,
        description="embedded backend: measure what a llama.cpp step of 1..max_sequences rows and a verified draft "
        "cost on this host (once per llama.cpp build and model, ~40 s on 2 cores, stamped in cache_dir), and take the "
        "threads, rows per step and draft lengths from it; off assumes costs measured on another host",
    )
    tool_choice: ToolChoiceMethod = Field(
        default=ToolChoiceMethod.probe,
        description="how ponder-direct decides tool_choice auto: probe (a short unconstrained generation in the "
        "model's own tool-call layout says whether it reaches for an offered function; measured on BFCL, "
        "docs/results/bfcl) or union (one constrained reply: words or calls, the model chooses inside the JSON)",
    )
    timeout_s: float = 120.0
    max_retries: int = 3
    temperature: float = 0.0
    max_tokens: int = 512
    structured_retries: int = 2


class ToolServerSettings(BaseModel):
    url: str | None = Field(default=None, description="a remote ToolServer manager; None runs it in process")
    token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8100
    image: str = "ponder-node:latest"
    runtime: str | None = Field(default=None, description="container runtime, e.g. runsc for gVisor")
    pool_size: int = 2
    memory: str = "512m"
    cpus: float = 1.0
    pids_limit: int = 128
    workspace_size: str = "64m"
    call_timeout_s: float = 30.0
    session_ttl_s: float = 3600.0
    idle_timeout_s: float = 600.0
    max_output_chars: int = 20_000
    docker_host: str | None = Field(default=None, description="Docker engine URL; default unix:///var/run/docker.sock")
    instance: str = Field(default="default", description="label of this manager's containers; orphans are reaped")
    call_grace_s: float = Field(default=2.0, description="past the time limit + this, the sandbox is replaced")
    max_request_bytes: int = Field(default=16 * 1024 * 1024, description="larger HTTP request bodies get 413")
    max_sessions: int = Field(default=32, description="open sessions (containers) at once; more get 503")


class SearchSettings(BaseModel):
    index_dir: Path = Field(default_factory=lambda: default_data_dir() / "index")
    kb_path: Path = Field(default_factory=lambda: default_data_dir() / "kb.sqlite")
    backend: Literal["local", "searxng", "brave"] = "local"
    searxng_url: str | None = None
    brave_api_key: SecretStr | None = None
    allow_private: bool = False
    fetch_timeout_s: float = 15.0
    max_page_bytes: int = 5_000_000
    screen_chars: int = 1500
    engine: Literal["tantivy", "sqlite"] = Field(default="tantivy", description="local BM25 engine")
    dense: bool = Field(default=False, description="hybrid BM25 + MiniLM retrieval (needs the 'dense' extra)")
    wordnet_dir: Path = Field(default=Path("/usr/share/wordnet"), description="WordNet 3.0 dict (wordnet-base)")


class APISettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = Field(default_factory=lambda: f"sqlite:///{default_data_dir() / 'ponder.sqlite'}")
    api_keys: list[SecretStr] = Field(default_factory=list)
    metrics_public: bool = Field(
        default=False,
        description="serve /metrics without an API key even when keys are configured (for a scraper that sends "
        "none); with no keys the whole API is open anyway",
    )
    # scale-out: replicas sharing one database hold a lease on each run they execute (ponder.api._lease)
    replica_id: str = Field(
        default_factory=socket.gethostname,
        description="this API replica's name; unique per replica sharing a database (default: the host name)",
    )
    lease_s: float = Field(default=15.0, gt=0, description="a run's lease lasts this long without renewal")
    lease_renew_s: float = Field(default=5.0, gt=0, description="how often a replica renews its leases")
    stream_poll_s: float = Field(default=0.5, gt=0, description="SSE poll interval for runs on another replica")
    # the database connection pool: a request that waits longer than db_pool_timeout_s for a connection is answered
    # 503 with Retry-After (the service is at capacity), not left hanging
    db_pool_size: int = Field(default=10, ge=1, description="database connections kept open")
    db_max_overflow: int = Field(default=10, ge=0, description="extra connections opened under load")
    db_pool_timeout_s: float = Field(default=10.0, gt=0, description="longest wait for a free connection")
    # per-key limits (0 or empty: none); answered with 429 and Retry-After
    rate_limit: str = Field(
        default="",
        description="requests per API key in the `limits` notation, e.g. '120/minute' or '10/second;500/hour'",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="where request counts live: memory:// (one replica) or a shared store such as redis://host:6379",
    )
    max_active_runs_per_key: int = Field(default=0, ge=0, description="runs queued or running at once per API key")
    record_prompts: bool = Field(
        default=True,
        description="keep each model call's messages and outputs in the run's events (the run view's model calls)",
    )
    run_token_budget: int = Field(
        default=0, ge=0, description="prompt + completion tokens one run may spend before it is stopped"
    )


class MCPServerSettings(BaseModel):
    """An MCP server whose tools the planner and ReAct may call: a command (stdio) or a streamable-HTTP URL."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="prefix of its tools' names: <name>_<tool>")
    command: list[str] = Field(default_factory=list, description="stdio: the command and its arguments")
    url: str | None = Field(default=None, description="streamable HTTP: the server's URL (…/mcp)")
    env: dict[str, str] = Field(default_factory=dict, description="stdio: environment of the command")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP: headers sent (e.g. Authorization)")
    allow: list[str] = Field(default_factory=list, description="the tools offered (empty: all the server lists)")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="longest wait for one call")
    allow_private: bool = Field(default=False, description="HTTP: allow a loopback or private address")

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerSettings:
        if bool(self.command) == bool(self.url):
            raise ValueError(f"MCP server {self.name!r} needs exactly one of command (stdio) or url (HTTP)")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PONDER_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    toolserver: ToolServerSettings = Field(default_factory=ToolServerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    api: APISettings = Field(default_factory=APISettings)
    mcp_servers: list[MCPServerSettings] = Field(
        default_factory=list, description="MCP servers whose tools the planner and ReAct may call (JSON list)"
    )
    checkpoint_url: str | None = Field(
        default=None,
        description="LangGraph checkpointer: sqlite path or postgresql:// URL; default under data_dir",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()
