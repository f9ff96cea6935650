"""The chat UI in a real headless Chromium: ask, watch the reasoning stream in, answer the human question inline,
find the run among past runs; and the API-key prompt of a server with keys."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from ponder.llm import ChatRequest
from tests.api._support import reply, slow_reply
from tests.api.conftest import Server
from tests.fakes import FunctionModel

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium package")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        await browser.close()


async def open_page(browser: Browser, server: Server) -> Page:
    page = await browser.new_page(viewport={"width": 1360, "height": 1000})
    page.set_default_timeout(15_000)
    await page.goto(server.url + "/")
    return page


async def test_ask_watch_reasoning_and_answer_the_human(
    browser: Browser, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server()
    page = await open_page(browser, server)
    await expect(page.locator("#strategy option[value=showcase]")).to_have_text(
        "showcase — time unknown yet",
        timeout=30_000,  # the catalog imports every strategy
    )
    cot = page.locator("#strategy option[value=cot]")
    await expect(cot).to_have_text("Think step by step (cot) — time unknown yet")
    await page.select_option("#strategy", "showcase")
    await expect(page.locator("#strategy-words")).to_have_text("showcase: test: every event type, then asks a human.")
    await page.fill("#question", "What is 6 times 7?")
    await page.press("#question", "Enter")

    turn = page.locator(".turn").last
    await expect(turn.locator(".msg.user")).to_have_text("What is 6 times 7?")
    # the plan tree with its nested subtask and statuses
    await expect(turn.locator(".plan-section")).to_contain_text("2.1 multiply")
    await expect(turn.locator(".plan-section .st.done")).to_have_text("done")
    # tool calls under their subtask: code as a code block, output as text, a failure with its reason
    group = turn.locator(".group[data-group='2.1']")
    await expect(group.locator("h5")).to_have_text("subtask 2.1 — multiply")
    tool = group.locator(".tool[data-call=c1]")
    await expect(tool).to_have_class("tool ok")
    await expect(tool.locator("pre.code")).to_have_text("x = 6 * 7\nprint(x)  # the answer")
    await expect(tool.locator("pre.code .tok-c")).to_have_text("# the answer")
    await expect(tool.locator(".stdout")).to_have_text("42\n")
    failed = turn.locator(".group[data-group='1'] .tool[data-call=c0]")
    await expect(failed).to_have_class("tool err")
    await expect(failed.locator(".meta")).to_have_text("← failed: exit 1")
    await expect(failed.locator(".stderr")).to_have_text("no such file")
    await expect(turn.locator(".group[data-group='1'] .group-outcome")).to_have_text("the facts are in the question")
    await expect(turn.locator(".plan-section .outcome.failed")).to_have_text("why it failed: no unit was given")
    assert "\\n" not in await turn.locator(".tool-section").inner_text()  # no JSON escapes anywhere
    # evidence triples marked supported / unsupported
    await expect(turn.locator("tr.supported .triple")).to_have_text("(Paris, capital of, France)")
    await expect(turn.locator("tr.unsupported .mark")).to_have_text("✗ unsupported")
    await expect(turn.locator(".evidence-section")).to_contain_text("factuality 0.50")
    # the compact MCTS tree, best path highlighted
    await expect(turn.locator(".tree-section .node.chosen .label")).to_have_text(["root", "try x=6 ✓"])
    await expect(turn.locator(".tree-section")).to_contain_text("N=3 Q=0.80")
    # the human question, answered inline
    await expect(turn.locator(".badge")).to_have_text("waiting for you")
    await expect(turn.locator(".human .q")).to_have_text("Question for you: Which unit should the answer use?")
    await page.screenshot(path=str(tmp_path / "waiting.png"), full_page=True)
    await turn.locator(".human input").fill("metres")
    await turn.locator(".human button").click()
    await expect(turn.locator(".answer")).to_have_text("hello (metres)")
    await expect(turn.locator(".badge")).to_have_text("done")
    await expect(turn.locator(".human .you")).to_have_text("you answered: metres")
    await expect(turn.locator(".stream[data-field=reasoning]")).to_have_text("hello")
    await expect(turn.locator(".costs")).to_contain_text("1 model call ·")
    # the prompt-level trace: what the model was asked, and what it answered
    call = turn.locator(".calls-section details.call")
    await expect(call).to_have_count(1)
    await call.locator("summary").click()
    await expect(call.locator("pre.prompt")).to_have_text("answer")
    await expect(call.locator("pre.reply")).to_have_text("hello")
    await expect(turn.locator(".files-section summary")).to_have_text("fib.txt")
    await turn.locator(".files-section summary").click()
    await expect(turn.locator(".files-section pre")).to_have_text("0 1 1 2 3 5")
    # the run is among the conversations; opening it replays the whole stream
    past = page.locator("#conversations li").first
    await expect(past).to_contain_text("What is 6 times 7?")
    await expect(past).to_contain_text("1 question · done")
    await page.screenshot(path=str(tmp_path / "answered.png"), full_page=True)
    await page.click("#new-chat")
    await expect(page.locator(".turn")).to_have_count(0)
    await past.click()
    replay = page.locator(".turn")
    await expect(replay.locator(".answer")).to_have_text("hello (metres)")
    await expect(replay.locator("tr.supported")).to_have_count(1)
    await expect(replay.locator(".human .you")).to_have_text("(closed)")
    shots = os.environ.get("PONDER_UI_SCREENSHOTS")  # to look at them: set a folder
    if shots:
        for name in ("waiting.png", "answered.png"):
            shutil.copy(tmp_path / name, Path(shots) / name)


async def test_a_server_with_keys_asks_for_one(browser: Browser, make_server: Callable[..., Server]) -> None:
    server = make_server(keys=["ui-key"])
    page = await open_page(browser, server)
    await expect(page.locator("#notice")).to_contain_text("needs an API key")
    await page.fill("#apikey", "ui-key")
    await page.press("#apikey", "Enter")
    await page.locator("#apikey").dispatch_event("change")
    await expect(page.locator("#strategy option[value=cot]")).to_have_count(1)
    await expect(page.locator("#notice")).to_be_hidden()
    await page.select_option("#strategy", "cot")
    await page.fill("#question", "What is 2+2?")
    await page.click("#send")
    await expect(page.locator(".turn .answer")).to_have_text("4")
    await expect(page.locator(".turn .stream")).to_contain_text("2 plus 2 is 4")


async def test_a_slow_step_shows_its_progress_and_stop_cancels_the_run(
    browser: Browser, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server(model=FunctionModel(slow_reply(2.5)))
    page = await open_page(browser, server)
    await page.select_option("#strategy", "steps")
    await page.fill("#question", "count slowly")
    await page.click("#send")
    turn = page.locator(".turn").last
    await expect(turn.locator(".live")).to_contain_text("model call 1: waiting for the model")
    await expect(turn.locator(".live")).to_contain_text("model call 2:", timeout=10_000)  # it moves on
    await turn.locator("button.stop").click()
    await expect(turn.locator(".badge")).to_have_text("stopped")
    await expect(turn.locator("button.stop")).to_be_hidden()
    await expect(turn.locator(".live")).to_have_text("")
    await expect(turn.locator(".stopped-note")).to_have_text("You stopped this answer.")
    await expect(turn.locator(".error")).to_have_count(0)  # stopping is not an error


async def test_a_follow_up_carries_the_conversation(
    browser: Browser, make_server: Callable[..., Server], model: FunctionModel
) -> None:
    server = make_server()
    page = await open_page(browser, server)
    await page.select_option("#strategy", "cot")
    await page.fill("#question", "What is 2+2?")
    await page.click("#send")
    await expect(page.locator(".turn .answer")).to_have_text("4")
    await expect(page.locator("#followup")).to_contain_text("Follow-up")
    await page.fill("#question", "And twice that?")
    await page.click("#send")
    second = page.locator(".turn").nth(1)
    await expect(second.locator(".answer")).to_have_text("4")
    await expect(second.locator("details.context summary")).to_have_text("follows up on the conversation above")
    asked = model.requests[-1].messages  # what the model read for the second question: the chat, as turns
    assert [(m.role, m.content) for m in asked[-3:-1]] == [("user", "What is 2+2?"), ("assistant", "4")]
    assert "Question: And twice that?" in asked[-1].content
    # "New" starts afresh: the next question goes alone
    await page.click("#new-chat")
    await expect(page.locator("#followup")).to_be_hidden()
    await page.fill("#question", "What is 3+3?")
    await page.click("#send")
    await expect(page.locator(".turn .answer")).to_have_text("4")
    assert [m.role for m in model.requests[-1].messages] == ["system", "user"]


async def test_a_choice_question_from_the_page(browser: Browser, make_server: Callable[..., Server]) -> None:
    server = make_server()
    page = await open_page(browser, server)
    await page.select_option("#strategy", "cot")
    await page.select_option("#family", "choice")
    await page.fill("#choices", "A: red; B: blue")
    await page.fill("#question", "Which colour is the sky?")
    await page.click("#send")
    await expect(page.locator(".turn .answer")).to_have_text("A: red")  # the fake picks the first option


async def test_the_api_docs_render_with_the_network_off(browser: Browser, make_server: Callable[..., Server]) -> None:
    server = make_server()
    page = await browser.new_page()
    outside: list[str] = []

    async def loopback_only(route: Route) -> None:
        if route.request.url.startswith(server.url):
            await route.continue_()
        else:
            outside.append(f"{route.request.resource_type} {route.request.url}")
            await route.abort()

    await page.route("**/*", loopback_only)
    await page.goto(server.url + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("ponder", timeout=15_000)
    await expect(page.locator(".opblock-summary-path").first).to_be_visible()
    await page.goto(server.url + "/redoc")
    await expect(page.locator("h1").first).to_contain_text("ponder", timeout=15_000)
    # no script, stylesheet or font comes from outside; ReDoc's bundle asks its CDN only for its footer logo image
    assert all(entry.startswith("image ") for entry in outside), outside


async def test_a_phone_sized_page_has_no_horizontal_overflow(
    browser: Browser, make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server()
    page = await browser.new_page(viewport={"width": 400, "height": 800})
    page.set_default_timeout(15_000)
    await page.goto(server.url + "/")
    await page.select_option("#strategy", "showcase")
    await page.fill("#question", "What is 6 times 7? " + "Explain every step of the computation. " * 6)
    await page.click("#send")
    turn = page.locator(".turn").last
    await expect(turn.locator(".badge")).to_have_text("waiting for you")
    await expect(page.locator("#sidebar")).not_to_be_in_viewport()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide at a 400 px viewport"
    await page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    await page.click("#toggle-runs")
    await expect(page.locator("#sidebar")).to_be_in_viewport()
    await expect(page.locator("#conversations li").first).to_contain_text("What is 6 times 7?")
    shots = os.environ.get("PONDER_UI_SCREENSHOTS")
    if shots:
        shutil.copy(tmp_path / "phone.png", Path(shots) / "phone.png")


async def test_the_trace_shows_what_the_model_was_asked_at_each_planner_step(
    browser: Browser, make_server: Callable[..., Server]
) -> None:
    from tests.agents.planner._script import answer, plan, submit
    from tests.api.conftest import wait_status
    from tests.fakes import ScriptedModel

    model = ScriptedModel([plan("multiply six by seven"), submit("6*7 is 42"), answer("42")])
    server = make_server(model=model)
    async with server.client() as client:
        run = (
            await client.post(
                "/runs",
                json={"strategy": "planner", "input": {"question": "6 times 7?"}, "options": {"adaptive": False}},
            )
        ).json()
        assert (await wait_status(client, run["id"], "succeeded", "failed"))["status"] == "succeeded"
    page = await open_page(browser, server)
    await page.locator("#conversations li").first.click()
    trace = page.locator(".turn .calls-section")
    await expect(trace.locator("h4")).to_have_text("Trace")
    # the plan step at the top, the subtask's act step under the subtask, each holding the call it made
    await expect(trace.locator(":scope > .trace-step[data-purpose=plan] details.call")).to_have_count(1)
    subtask = trace.locator(".trace-group[data-group='1']")
    await expect(subtask.locator("> summary")).to_have_text("subtask 1 — multiply")
    act = subtask.locator(".trace-step[data-purpose=act]")
    await expect(act.locator(".step-head")).to_contain_text("choosing the next action:")
    await act.locator("details.call summary").click()
    await expect(act.locator("pre.prompt").last).to_contain_text("multiply six by seven")
    await expect(act.locator("pre.reply")).to_contain_text("6*7 is 42")
    model.assert_complete()


async def test_the_run_view_says_how_the_answer_was_chosen_among_samples(
    browser: Browser, make_server: Callable[..., Server]
) -> None:
    reasonings = ["3 and 1 make 4", "2 and 2 make 4", "it is 5", "4, surely", "5 it is"]  # sc's 5 chains

    def sampled(request: ChatRequest) -> Any:
        if request.constraint is not None:  # each sample's typed answer follows from its own reasoning
            said = str(request.messages[-2].content)  # the reasoning, then the request for the answer
            return {"answer": 5 if "5" in said else 4}
        return reasonings[: request.n]

    server = make_server(model=FunctionModel(sampled))
    page = await open_page(browser, server)
    await page.select_option("#strategy", "sc")
    await page.select_option("#family", "number")
    await page.fill("#question", "What is 2+2?")
    await page.click("#send")
    turn = page.locator(".turn").last
    await expect(turn.locator(".answer")).to_have_text("4")
    box = turn.locator(".choice-section")
    await box.locator("summary").click()
    await expect(box.locator(".choice-rule")).to_contain_text("5 answers: each vote weighted by how sure")
    rows = box.locator("table.votes tr")
    await expect(rows).to_have_count(3)  # a header and one row per distinct answer
    await expect(rows.nth(1).locator("td").nth(0)).to_have_text("4")
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text("3")
    await expect(rows.nth(1)).to_have_class("won")
    await expect(rows.nth(2).locator("td").nth(3)).to_have_text("chain of thought")


async def test_the_status_bar_and_stop_stay_in_view_while_a_long_run_scrolls(
    browser: Browser, make_server: Callable[..., Server]
) -> None:
    server = make_server(model=FunctionModel(slow_reply(5.0)))
    page = await browser.new_page(viewport={"width": 1000, "height": 560})
    page.set_default_timeout(15_000)
    await page.goto(server.url + "/")
    # a long conversation above the turn (as after many questions): the page scrolls, the bar must not
    await page.evaluate("document.querySelector('#conversation').prepend(Object.assign("
                        "document.createElement('div'), {style: 'height: 3000px', id: 'earlier'}))")  # fmt: skip
    await page.select_option("#strategy", "steps")
    await page.fill("#question", "count slowly")
    await page.click("#send")
    bar = page.locator("#statusbar")
    await expect(bar).to_be_visible()
    await expect(page.locator("#send")).to_be_disabled()  # one running turn per conversation
    await expect(page.locator("#status-words")).to_contain_text("step 1 — waiting for the model")
    await page.evaluate("document.querySelector('#conversation').scrollTop = 0")
    await expect(page.locator(".turn button.stop")).not_to_be_in_viewport()  # the turn's own Stop scrolled away
    await expect(bar).to_be_in_viewport()
    await expect(page.locator("#status-words")).not_to_have_text("")
    await expect(page.locator("#status-time")).to_have_text(re.compile(r"^\d+ s$"))
    await expect(page.locator("#status-stop")).to_be_in_viewport()
    await page.click("#status-stop")
    await expect(page.locator(".turn .badge")).to_have_text("stopped")
    await expect(bar).to_be_hidden()
    await expect(page.locator("#send")).to_be_enabled()


async def test_a_conversation_is_one_entry_resumes_and_leaves_stopped_turns_out(
    browser: Browser, make_server: Callable[..., Server]
) -> None:
    async def answers(request: ChatRequest) -> Any:
        if any("a question I stop" in str(m.content) for m in request.messages[-1:]):
            await asyncio.sleep(5)  # slow enough to be stopped
        return reply(request)

    model = FunctionModel(answers)
    server = make_server(model=model)
    page = await open_page(browser, server)
    await page.select_option("#strategy", "cot")
    await page.fill("#question", "What is 2+2?")
    await page.click("#send")
    await expect(page.locator(".turn .answer")).to_have_text("4")
    await page.fill("#question", "And twice that?")
    await page.click("#send")
    await expect(page.locator(".turn").nth(1).locator(".answer")).to_have_text("4")
    entries = page.locator("#conversations li")
    await expect(entries).to_have_count(1)
    await expect(entries.first).to_contain_text("What is 2+2?")
    await expect(entries.first).to_contain_text("2 questions")

    await page.click("#new-chat")
    await expect(page.locator(".turn")).to_have_count(0)
    await entries.first.click()  # resume it
    await expect(page.locator(".turn")).to_have_count(2)
    await page.select_option("#strategy", "steps")  # a slow turn, stopped: it must not reach the next turn
    await page.fill("#question", "a question I stop")
    await page.click("#send")
    await expect(page.locator("#statusbar")).to_be_visible()
    await page.click("#status-stop")
    await expect(page.locator(".turn").nth(2).locator(".badge")).to_have_text("stopped")
    await page.select_option("#strategy", "cot")
    await page.fill("#question", "And plus one?")
    await page.click("#send")
    await expect(page.locator(".turn").nth(3).locator(".answer")).to_have_text("4")
    asked = [(m.role, m.content) for m in model.requests[-1].messages]
    assert ("user", "What is 2+2?") in asked and ("user", "And twice that?") in asked
    assert not any("a question I stop" in str(content) for _, content in asked)
    await expect(entries).to_have_count(1)
    await expect(entries.first).to_contain_text("4 questions")


async def test_answers_render_markdown_and_math_and_the_models_html_stays_text(
    browser: Browser, make_server: Callable[..., Server]
) -> None:
    reply_text = (
        "**Sum**: the result is\n\\[ 9 + 7 = 16 \\]\nand inline \\(x^2\\).\n\n"
        '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    )

    def markdown(request: ChatRequest) -> Any:
        return f"Let me add.\nFinal answer: {reply_text}"

    server = make_server(model=FunctionModel(markdown))
    page = await open_page(browser, server)
    await page.select_option("#strategy", "cot")
    await page.fill("#question", "What is 9 + 7?")
    await page.click("#send")
    answer = page.locator(".turn .answer")
    await expect(page.locator(".turn .badge")).to_have_text("done")
    await expect(answer.locator("strong")).to_have_text("Sum")
    await expect(answer.locator(".katex-display")).to_have_count(1)
    await expect(answer.locator(".katex")).to_have_count(2)
    await expect(answer).to_contain_text("<script>window.pwned = 1</script>")  # shown, as text
    await expect(answer.locator("script, img")).to_have_count(0)
    assert await page.evaluate("window.pwned") is None
    await page.locator(".turn .turn-actions button", has_text="Edit").click()
    await expect(page.locator("#question")).to_have_value("What is 9 + 7?")


async def test_an_over_long_question_is_refused_before_it_is_sent(
    browser: Browser, make_server: Callable[..., Server]
) -> None:
    server = make_server()
    page = await open_page(browser, server)
    await page.select_option("#strategy", "cot")
    await page.press("#question", "Enter")
    await expect(page.locator("#notice")).to_have_text("Type a question first.")
    await page.fill("#question", "Why? " * 2500)
    await expect(page.locator("#counter")).to_contain_text("Too long for this model: 12,500 characters")
    await expect(page.locator("#send")).to_be_disabled()
    await page.press("#question", "Enter")
    await expect(page.locator(".turn")).to_have_count(0)
    async with server.client() as client:  # and the API says the same to a client that skips the page
        refused = await client.post("/runs", json={"input": {"question": "Why? " * 2500}})
        assert refused.status_code == 413 and "too long for the model" in refused.json()["error"]["message"]


async def test_each_key_sees_only_its_own_conversations(browser: Browser, make_server: Callable[..., Server]) -> None:
    server = make_server(keys=["key-alice", "key-bob"])

    async def signed_in(key: str) -> Page:
        context = await browser.new_context()  # its own localStorage: one person's browser
        page = await context.new_page()
        page.set_default_timeout(15_000)
        await page.goto(server.url + "/")
        await page.fill("#apikey", key)
        await page.locator("#apikey").dispatch_event("change")
        await expect(page.locator("#strategy option[value=cot]")).to_have_count(1)
        return page

    alice = await signed_in("key-alice")
    await alice.select_option("#strategy", "cot")
    await alice.fill("#question", "Alice's private question")
    await alice.click("#send")
    await expect(alice.locator(".turn .answer")).to_have_text("4")
    await expect(alice.locator("#conversations li").first).to_contain_text("Alice's private question")
    bob = await signed_in("key-bob")
    await expect(bob.locator("#conversations li")).to_have_text(["no conversations yet"])
    await bob.fill("#search", "private")
    await expect(bob.locator("#conversations li")).to_have_text(["nothing matches"])
