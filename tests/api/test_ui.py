"""The chat UI in a real headless Chromium: ask, watch the reasoning stream in, answer the human question inline,
find the run among past runs; and the API-key prompt of a server with keys."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.api.conftest import Server

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
    await expect(page.locator("#strategy option[value=showcase]")).to_have_count(1)
    await page.select_option("#strategy", "showcase")
    await page.fill("#question", "What is 6 times 7?")
    await page.press("#question", "Enter")

    turn = page.locator(".turn").last
    await expect(turn.locator(".msg.user")).to_have_text("What is 6 times 7?")
    # the plan tree with its nested subtask and statuses
    await expect(turn.locator(".plan-section")).to_contain_text("2.1 multiply")
    await expect(turn.locator(".plan-section .st.done")).to_have_text("done")
    # the tool call with its output
    tool = turn.locator(".tool[data-call=c1]")
    await expect(tool).to_have_class("tool ok")
    await expect(tool.locator(".output")).to_contain_text('"stdout": "42"')
    # evidence triples marked supported / unsupported
    await expect(turn.locator("tr.supported .triple")).to_have_text("(Paris, capital of, France)")
    await expect(turn.locator("tr.unsupported .mark")).to_have_text("✗ unsupported")
    await expect(turn.locator(".evidence-section")).to_contain_text("factuality 0.50")
    # the compact MCTS tree, best path highlighted
    await expect(turn.locator(".tree-section .node.chosen .label")).to_have_text(["root", "try x=6 ✓"])
    await expect(turn.locator(".tree-section")).to_contain_text("N=3 Q=0.80")
    # the human question, answered inline
    await expect(turn.locator(".badge")).to_have_text("waiting")
    await expect(turn.locator(".human .q")).to_have_text("Question for you: Which unit should the answer use?")
    await page.screenshot(path=str(tmp_path / "waiting.png"), full_page=True)
    await turn.locator(".human input").fill("metres")
    await turn.locator(".human button").click()
    await expect(turn.locator(".answer")).to_have_text("hello (metres)")
    await expect(turn.locator(".badge")).to_have_text("succeeded")
    await expect(turn.locator(".human .you")).to_have_text("you answered: metres")
    await expect(turn.locator(".stream[data-field=reasoning]")).to_have_text("hello ")
    await expect(turn.locator(".costs")).to_contain_text("1 LLM calls")
    # the run is among the past runs; opening it replays the whole stream
    past = page.locator("#runs li").first
    await expect(past).to_contain_text("What is 6 times 7?")
    await expect(past).to_contain_text("showcase · succeeded")
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
