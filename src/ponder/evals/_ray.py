"""Eval items as Ray tasks, for benchmark runs larger than one machine.

The in-process solver cannot travel (it holds this process's model object), so each Ray task builds its own
context from :class:`~ponder.config.Settings`: every worker talks to the same shared model endpoint (a vLLM server
or any OpenAI-compatible one, ``PONDER_LLM__BASE_URL``) and, when configured, the same remote ToolServer. Jobs and
outcomes are plain pydantic data, so they serialise as JSON. Implements :class:`ponder.evals.Executor`; nothing here
depends on the API, so the batch CLI can use it too.

    executor = RayExecutor(settings, address="ray://head:10001")   # or None: a local Ray instance
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ponder.config import Backend, Settings
from ponder.errors import ConfigError


def solve_remote(job_json: str, settings_json: str) -> str:
    """Runs in a Ray worker: one job through a context built from the settings; returns the Outcome as JSON."""
    from ponder.evals import Job, make_solver
    from ponder.wiring import build_context

    settings = Settings.model_validate_json(settings_json)
    job = Job.model_validate_json(job_json)

    async def run() -> str:
        outcome = await make_solver(build_context(settings))(job)
        return outcome.model_dump_json()

    return asyncio.run(run())


class RayExecutor:
    """``map`` runs each job as a Ray task (``num_cpus`` each), at most ``concurrency`` in flight."""

    def __init__(
        self,
        settings: Settings,
        *,
        address: str | None = None,
        num_cpus: float = 1.0,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        if settings.llm.backend is Backend.embedded:
            raise ConfigError(
                "Ray workers need a shared model endpoint, not the embedded model",
                hint="run vLLM (or another OpenAI-compatible server) and set PONDER_LLM__BACKEND and "
                "PONDER_LLM__BASE_URL",
            )
        self.settings_json = settings.model_dump_json()
        self.address = address
        self.num_cpus = num_cpus
        self.init_options = init_options or {}
        self.started = False  # this executor started the Ray instance it uses (and so shuts it down)

    def start(self) -> None:
        """Connect to Ray, or start a local instance, in the calling thread: call it from the main thread. Ray ties
        the processes it starts to the thread that started them (the kernel's parent-death signal follows the
        thread), so a local instance started from a worker thread (``asyncio.to_thread``) was killed half-way when
        that thread ended, its agents left running with no parent (measured: ``ponder eval run --ray local``)."""
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("Ray is not installed", hint="pip install 'ponder[ray]'") from exc
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_options)
            self.started = True

    def _remote(self) -> Any:
        import ray

        if not ray.is_initialized():
            self.start()  # a caller that did not start it: here, in this thread
        return ray.remote(num_cpus=self.num_cpus, max_retries=0)(solve_remote)

    def close(self) -> None:
        """Disconnect from Ray; a local instance this executor started is shut down with every process it started
        (raylet, GCS, dashboard and runtime-env agents, workers). Without it they outlive the command that
        started them. A cluster at ``address`` keeps running: it is not ours."""
        if not self.started:
            return
        import ray

        ray.shutdown()
        self.started = False

    def _ready(self) -> bool:
        try:
            import ray
        except ImportError:
            return False
        return bool(ray.is_initialized())

    async def map(self, jobs: Sequence[Any], solve: Any, concurrency: int) -> AsyncIterator[Any]:
        """``solve`` (the in-process solver) is not used: workers solve with their own context."""
        from ponder.evals import Outcome

        remote = self._remote() if self._ready() else await asyncio.to_thread(self._remote)
        todo = list(jobs)
        running: dict[asyncio.Future[Any], Any] = {}

        def submit() -> None:
            while todo and len(running) < max(1, concurrency):
                job = todo.pop(0)
                ref = remote.remote(job.model_dump_json(), self.settings_json)
                running[asyncio.wrap_future(ref.future())] = ref

        submit()
        try:
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    yield Outcome.model_validate_json(future.result())
                submit()
        finally:
            if running:
                import ray

                for ref in running.values():
                    ray.cancel(ref, force=True)
