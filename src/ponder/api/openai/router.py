"""The OpenAI-compatible endpoint's routes: each strategy is a model (``ponder-cot``, ``ponder-cok``, ...) and
``ponder-direct`` is the backend model itself. The routes only dispatch: :mod:`.direct` and :mod:`.strategy` serve,
:mod:`.protocol` is the wire format."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._models import service_model
from ponder.api._schemas import ErrorBody
from ponder.api.openai.direct import serve_direct
from ponder.api.openai.protocol import (
    DIRECT,
    PREFIX,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
)
from ponder.api.openai.strategy import serve_strategy
from ponder.errors import NotFoundError
from ponder.llm import Costs, MeteredModel

router = APIRouter(prefix="/v1", tags=["openai"])


def _cards(service: ServiceDep) -> list[ModelCard]:
    direct = ModelCard(
        id=DIRECT,
        description="the backend model itself: response_format and tools enforced by constrained generation, "
        "n, logprobs, seed, stop",
    )
    return [direct, *(ModelCard(id=PREFIX + name, description=d) for name, d in service.catalog.names().items())]


@router.get("/models", response_model=ModelList, summary="The strategies, as models; ponder-direct: the model itself")
async def list_models(service: ServiceDep, _owner: OwnerDep) -> ModelList:
    return ModelList(data=_cards(service))


@router.get("/models/{model_id}", response_model=ModelCard, summary="One model")
async def get_model(model_id: str, service: ServiceDep, _owner: OwnerDep) -> ModelCard:
    for card in _cards(service):
        if card.id == model_id:
            return card
    raise NotFoundError(f"unknown model {model_id!r}", hint="GET /v1/models lists them")


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Chat completion by a strategy, or by the backend model (ponder-direct)",
    responses={
        200: {
            "content": {"text/event-stream": {"schema": ChatCompletionChunk.model_json_schema()}},
            "description": "a completion, or chat.completion.chunk events when streaming",
        },
        404: {"model": ErrorBody},
    },
)
async def chat_completions(body: ChatCompletionRequest, service: ServiceDep, owner: OwnerDep) -> Any:
    if body.model == DIRECT:  # one request is held to the run token budget, as a run is (its probe included)
        costs = Costs()
        budget = service.settings.api.run_token_budget
        model = MeteredModel(
            service_model(service.context.model, service.metrics, "direct", costs=costs, budget=budget), costs
        )
        return await serve_direct(body, model, service.settings.llm.tool_choice.value)
    strategy = body.model.removeprefix(PREFIX)
    if not body.model.startswith(PREFIX) or strategy not in service.catalog.names():
        raise NotFoundError(
            f"unknown model {body.model!r}",
            hint="choose one of: " + ", ".join(c.id for c in _cards(service)),
        )
    return await serve_strategy(body, strategy, service, owner)
