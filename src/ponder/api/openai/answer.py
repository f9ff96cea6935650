"""A strategy model's reply once its run has ended or paused: the answer in the form the client asked for (text,
``response_format``'s JSON, a call of the client's output tool), a client tool the run called, and the usage; one
builder for the streamed and the non-streamed reply."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import ponder.errors as errors
from ponder.api._deps import ServiceDep
from ponder.api._models import service_model
from ponder.api._record import RunRecord, RunStatus
from ponder.api.openai.direct import content_constraint
from ponder.api.openai.protocol import (
    ChatCompletionRequest,
    CompletionUsage,
    FunctionCall,
    ToolCallOut,
    tool_calls_out,
    usage_of,
)
from ponder.llm import ChatRequest, Costs, JsonSchemaConstraint, Message, system, user
from ponder.llm.tool_calling import ToolSpec, must_call, parse_reply, tool_messages

FORMAT_SYSTEM = (
    "You write an answer that was already worked out as a JSON object that follows the given schema. Keep the "
    "answer's content exactly; only its form changes. Fill fields the answer does not give with empty values."
)
_CALL_ID = re.compile(r"^call__(run_[0-9a-f]+)__")


@dataclass
class Answer:
    content: str | None
    tool_calls: list[ToolCallOut] | None
    usage: CompletionUsage
    finish: str


def output_tool(body: ChatCompletionRequest, takes_tools: bool) -> bool:
    """The client's tools are an output format, not actions: the strategy cannot act with them and the client
    requires a call."""
    return bool(body.tools) and not takes_tools and must_call(body.tool_choice)


def check_output_forms(body: ChatCompletionRequest, takes_tools: bool) -> None:
    """A malformed ``response_format`` or output tool is refused before the run starts."""
    content_constraint(body.response_format)
    if output_tool(body, takes_tools):
        tool_messages([], [ToolSpec.model_validate(t) for t in body.tools or []], body.tool_choice, None)


async def final_answer(
    service: ServiceDep, record: RunRecord, body: ChatCompletionRequest, takes_tools: bool
) -> Answer:
    usage = run_usage(record)
    waiting = waiting_tool_calls(record)
    if waiting:
        return Answer(None, waiting, usage, "tool_calls")
    if record.status is RunStatus.succeeded and output_tool(body, takes_tools):
        calls, extra = await _as_tool_call(service, record, body)
        return Answer(None, calls, usage + extra, "tool_calls")
    if record.status is RunStatus.succeeded and content_constraint(body.response_format) is not None:
        content, extra = await _as_json(service, record, body)
        return Answer(content, None, usage + extra, "stop")
    return Answer(_content(record), None, usage, "stop")


def run_usage(record: RunRecord) -> CompletionUsage:
    costs = record.costs or Costs()
    prompt, completion = costs.prompt_tokens, costs.completion_tokens
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def reasoning(record: RunRecord) -> str | None:
    """The reasoning every strategy's result carries (its chain, winning sample, program, search path or subtask
    conclusions)."""
    result = record.strategy_result
    return result.reasoning if result is not None and result.reasoning else None


def _content(record: RunRecord) -> str | None:
    result = record.strategy_result
    if record.status is RunStatus.succeeded and result is not None:
        return result.text
    if record.status is RunStatus.waiting and record.pending is not None:
        return record.pending.question
    return None


def waiting_tool_calls(record: RunRecord) -> list[ToolCallOut]:
    """The client tool a waiting run called, as OpenAI ``tool_calls`` (its id names the run, to resume it)."""
    pending = record.pending if record.status is RunStatus.waiting else None
    call = pending.tool_call if pending is not None else None
    if not call:
        return []
    step = re.sub(r"[^A-Za-z0-9]", "-", str(call.get("id", "")))
    arguments = json.dumps(call.get("arguments") or {})
    return [ToolCallOut(id=f"call__{record.id}__{step}", function=FunctionCall(name=call["name"], arguments=arguments))]


def resumed_run(messages: list[Any]) -> tuple[str, str] | None:
    """(run id, the tool's result) when the conversation ends with the result of a tool a ponder run called."""
    if not messages or messages[-1].role != "tool":
        return None
    call_id = str((messages[-1].model_extra or {}).get("tool_call_id", ""))
    match = _CALL_ID.match(call_id)
    if match is None:
        raise errors.InputError(
            f"tool_call_id {call_id!r} names no tool call of a ponder run",
            hint="send the tool message in answer to a tool_calls reply of this endpoint, with its id unchanged",
        )
    return match.group(1), messages[-1].text()


async def _write_answer(
    service: ServiceDep, record: RunRecord, body: ChatCompletionRequest, messages: list[Message], constraint: Any
) -> tuple[str, CompletionUsage]:
    """One constrained call of the backend model after the run that writes the strategy's answer in the form the
    client asked for (valid by construction); the strategy's reasoning and typed answer stay as they were."""
    request = ChatRequest(
        messages=messages, constraint=constraint, temperature=0.0, max_tokens=body.completion_limit() or 512
    )
    # the run's costs: the formatting call is held to the run's token budget
    costs = record.costs.model_copy() if record.costs is not None else Costs()
    model = service_model(
        service.context.model, service.metrics, record.strategy, costs=costs, budget=service.runs.token_budget
    )
    response = await model.complete(request)
    if response.choices[0].finish_reason == "length":
        raise errors.OutputTruncated(
            "the answer, written in the asked form, ran past max_completion_tokens",
            hint="raise max_completion_tokens",
            raw=response.text,
        )
    return response.text, usage_of(response.usage)


def _answer_prompt(record: RunRecord, ask: str) -> list[Message]:
    """The question, the client's instructions (they may say how the JSON is shaped: instructor's JSON mode puts
    the schema there) and the strategy's answer."""
    task, result = record.run_task, record.strategy_result
    question, context = task.question, task.context
    answer = result.text if result is not None else ""
    instructions = f"Instructions:\n{context}\n\n" if context else ""
    return [system(FORMAT_SYSTEM), user(f"{instructions}Question:\n{question}\n\nAnswer:\n{answer}\n\n{ask}")]


async def _as_json(service: ServiceDep, record: RunRecord, body: ChatCompletionRequest) -> tuple[str, CompletionUsage]:
    """The run's answer written as the JSON ``response_format`` asks for."""
    schema = content_constraint(body.response_format)
    assert schema is not None
    name = str(((body.response_format or {}).get("json_schema") or {}).get("name") or "answer")
    messages = _answer_prompt(record, "Write this answer as a JSON object.")
    return await _write_answer(service, record, body, messages, JsonSchemaConstraint(json_schema=schema, name=name))


async def _as_tool_call(
    service: ServiceDep, record: RunRecord, body: ChatCompletionRequest
) -> tuple[list[ToolCallOut], CompletionUsage]:
    """The run's answer as a call of the client's output tool: how pydantic-ai, instructor and the OpenAI Agents
    SDK ask for structured output (a tool, ``tool_choice`` required or named). One call, constrained to the
    offered tools' schemas, as ``response_format`` is."""
    tools = [ToolSpec.model_validate(t) for t in body.tools or []]
    messages = _answer_prompt(record, "Call the tool with this answer as its arguments.")
    messages, constraint = tool_messages(messages, tools, body.tool_choice, None, parallel=False)
    text, usage = await _write_answer(service, record, body, messages, constraint)
    return tool_calls_out(parse_reply(text).calls), usage
