"""The one model decorator under the API: every model call a run, a ``/v1`` reply's formatting or a ``ponder-direct``
chat makes goes through :func:`service_model`, so each is traced (a GenAI span), measured (Prometheus, under its
strategy's label) and held to the token budget the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ponder.api._metrics import MeasuredModel, Metrics
from ponder.errors import BudgetExhausted
from ponder.llm import ChatModel, ChatRequest, ChatResponse, Costs, ModelWrapper, StreamChunk, stream_or_complete
from ponder.telemetry import TracedModel


def service_model(
    base: ChatModel, metrics: Metrics, label: str, *, costs: Costs | None = None, budget: int = 0
) -> ChatModel:
    """``base`` traced and measured under ``label``; with ``costs`` and a ``budget``, each call is refused once
    ``costs`` (the run's or the request's meter) reaches the budget."""
    model: ChatModel = TracedModel(MeasuredModel(base, metrics, label))
    if budget and costs is not None:
        model = BudgetedModel(model, costs, budget)
    return model


class BudgetedModel(ModelWrapper):
    """Refuses a run's next model call once the run has spent its token budget (``costs`` is the run's meter)."""

    def __init__(self, inner: ChatModel, costs: Costs, budget: int) -> None:
        super().__init__(inner)
        self.costs = costs
        self.budget = budget

    def _check(self) -> None:
        if self.costs.tokens >= self.budget:
            raise BudgetExhausted(
                f"the run spent {self.costs.tokens} tokens, its budget is {self.budget}",
                hint="raise PONDER_API__RUN_TOKEN_BUDGET, or ask for less (fewer samples, a smaller search)",
            )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self._check()
        return await self.inner.complete(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        self._check()
        async for chunk in stream_or_complete(self.inner, request):
            yield chunk
