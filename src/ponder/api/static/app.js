// ponder's chat UI: plain JavaScript, no build step. It talks to the REST API of the server that serves it.
// Events stream over fetch() (not EventSource) so the API key can go in a header; after a dropped connection
// the stream resumes with Last-Event-ID, so nothing is shown twice or missed.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { strategies: [], current: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function apiKey() { return localStorage.getItem("ponder.apiKey") || ""; }

function headers(extra = {}) {
  const h = { "Content-Type": "application/json", ...extra };
  if (apiKey()) h.Authorization = "Bearer " + apiKey();
  return h;
}

function notice(message) {
  const box = $("#notice");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = body.error || {};
    const message = (err.message || response.statusText) + (err.hint ? ` (${err.hint})` : "");
    if (response.status === 401) notice("This server needs an API key: enter it at the top right. " + message);
    throw new Error(message);
  }
  return body;
}

function short(value, n = 2000) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 1);
  return text && text.length > n ? text.slice(0, n) + " …" : text;
}

// ---------- one question and its answer ----------

class Turn {
  constructor(run) {
    this.run = run;
    this.lastId = 0;
    this.tools = new Map();
    this.streams = new Map();
    this.done = false;
    this.aborter = new AbortController();
    this.badge = el("span", { class: "badge " + run.status, text: run.status });
    this.steps = el("ol", { class: "steps" });
    this.streamBox = el("div", { class: "section stream-section" });
    this.planBox = el("div", { class: "section plan-section" });
    this.toolBox = el("div", { class: "section tool-section" });
    this.evidenceBox = el("div", { class: "section evidence-section" });
    this.treeBox = el("div", { class: "section tree-section" });
    this.humanBox = el("div", { class: "human-section" });
    this.answer = el("div", { class: "answer" });
    this.footer = el("div", { class: "costs" });
    this.reasoning = el("details", { class: "reasoning", open: "" },
      el("summary", { text: "Reasoning" }), this.steps, this.planBox, this.streamBox, this.toolBox,
      this.evidenceBox, this.treeBox);
    this.node = el("section", { class: "turn", "data-run": run.id },
      el("div", { class: "msg user", text: run.input.question }),
      el("div", { class: "msg assistant" },
        el("div", { class: "status" }, el("span", { text: run.strategy }), this.badge),
        this.reasoning, this.humanBox, this.answer, this.footer));
  }

  setStatus(status) {
    this.badge.className = "badge " + status;
    this.badge.textContent = status;
  }

  section(box, title) {
    if (!box.firstChild) box.append(el("h4", { text: title }));
    return box;
  }

  handle(type, data) {
    switch (type) {
      case "step_started":
        this.steps.append(el("li", { text: data.name + (data.detail ? " — " + data.detail : "") }));
        break;
      case "text_delta": this.text(data.field, data.text); break;
      case "llm_call": {
        const out = data.output;
        if (out && typeof out === "object" && out.reasoning && !this.streams.has("reasoning")) {
          this.text("reasoning", out.reasoning);
        }
        const tokens = (data.prompt_tokens || 0) + (data.completion_tokens || 0);
        this.steps.append(el("li", { class: "llm", text: `LLM ${data.purpose}: ${tokens} tokens, ${(data.seconds || 0).toFixed(1)} s` }));
        break;
      }
      case "tool_call": this.toolCall(data); break;
      case "tool_result": this.toolResult(data); break;
      case "evidence": this.evidence(data); break;
      case "plan": this.plan(data); break;
      case "tree": this.tree(data.tree); break;
      case "needs_human": this.askHuman(data); break;
      case "final":
        this.answer.textContent = data.text;
        break;
      case "error":
        if (data.fatal) this.answer.after(el("div", { class: "error", text: "error: " + (data.error.message || "") + (data.error.hint ? " — " + data.error.hint : "") }));
        else this.steps.append(el("li", { class: "error", text: data.error.message || "error" }));
        break;
    }
  }

  text(field, piece) {
    let box = this.streams.get(field);
    if (!box) {
      this.section(this.streamBox, "Thinking");
      box = el("div", { class: "stream", "data-field": field });
      this.streams.set(field, box);
      this.streamBox.append(box);
    }
    box.textContent += piece;
  }

  toolCall(data) {
    this.section(this.toolBox, "Tool calls");
    const card = el("div", { class: "tool pending", "data-call": data.call_id },
      el("span", { class: "name", text: "⚙ " + data.tool }), el("pre", { class: "args", text: short(data.args, 1500) }));
    this.tools.set(data.call_id, card);
    this.toolBox.append(card);
  }

  toolResult(data) {
    let card = this.tools.get(data.call_id);
    if (!card) { this.toolCall({ call_id: data.call_id, tool: data.tool, args: {} }); card = this.tools.get(data.call_id); }
    card.className = "tool " + (data.ok ? "ok" : "err");
    const label = data.ok ? `← ok (${(data.seconds || 0).toFixed(2)} s)` : "← error: " + (data.error || "");
    card.append(el("div", { class: "meta", text: label }), el("pre", { class: "output", text: short(data.output ?? "") }));
  }

  evidence(data) {
    this.section(this.evidenceBox, "Evidence");
    const rows = data.triples.map((t) => {
      const cls = t.supported === true ? "supported" : t.supported === false ? "unsupported" : "unknown";
      const mark = t.supported === true ? "✓ supported" : t.supported === false ? "✗ unsupported" : "? unchecked";
      const score = t.score == null ? "" : Number(t.score).toFixed(2);
      return el("tr", { class: cls },
        el("td", { class: "mark", text: mark }),
        el("td", { class: "triple", text: `(${t.subject}, ${t.relation}, ${t.object})` }),
        el("td", { class: "score", text: score + (t.source && t.source !== "none" ? " · " + t.source : "") }),
        el("td", { class: "correction", text: t.correction || "" }));
    });
    const parts = [`round ${data.round}`];
    if (data.factuality != null) parts.push(`factuality ${Number(data.factuality).toFixed(2)}`);
    if (data.faithfulness != null) parts.push(`faithfulness ${Number(data.faithfulness).toFixed(2)}`);
    this.evidenceBox.append(el("div", { class: "scores", text: parts.join(" · ") }),
      el("table", { class: "triples" }, el("tbody", {}, ...rows)));
  }

  plan(data) {
    this.planBox.replaceChildren();
    this.section(this.planBox, "Plan");
    const plan = data.plan || {};
    const render = (items) => el("ul", { class: "plan" }, ...(items || []).map((s) => el("li", {},
      el("span", { class: "node" },
        el("span", { class: "st " + (s.status || ""), text: s.status || "" }),
        el("span", { class: "label", title: s.goal || "", text: `${s.id ? s.id + " " : ""}${s.name || s.goal || ""}` })),
      (s.children || s.subtasks || []).length ? render(s.children || s.subtasks) : null)));
    if (plan.goal) this.planBox.append(el("div", { class: "scores", text: "goal: " + plan.goal }));
    this.planBox.append(render(plan.subtasks || plan.children));
    if (data.change) this.planBox.append(el("div", { class: "scores", text: "last change: " + data.change }));
  }

  tree(tree) {
    // MCTS sends flat nodes with parent ids; nested trees (children) are drawn as they are.
    this.treeBox.replaceChildren();
    this.section(this.treeBox, "Search tree");
    let root = tree;
    const nodes = tree.nodes || [];
    const chosenPath = new Set();
    if (nodes.length) {
      const byId = new Map(nodes.map((n) => [n.id, { ...n, children: [] }]));
      for (const n of byId.values()) if (n.parent != null && byId.has(n.parent)) byId.get(n.parent).children.push(n);
      root = byId.get(tree.root) || [...byId.values()][0];
      for (let id = tree.chosen; id != null && byId.has(id); id = byId.get(id).parent) chosenPath.add(id);
    }
    const MAX_CHILDREN = 4;
    const render = (node, depth) => {
      const kids = [...(node.children || [])].sort((a, b) => (b.visits || 0) - (a.visits || 0));
      const shown = kids.slice(0, MAX_CHILDREN);
      const label = node.action || node.label || node.answer || (depth === 0 ? "root" : "");
      const mark = node.terminal ? (node.verified === false ? " ✗" : " ✓") : "";
      const item = el("li", {},
        el("span", { class: "node" + (chosenPath.has(node.id) ? " chosen" : "") },
          el("span", { class: "stat", text: `N=${node.visits ?? 0} Q=${Number(node.value ?? 0).toFixed(2)}` }),
          el("span", { class: "label", title: String(label), text: String(label).slice(0, 160) + mark })));
      if (shown.length && depth < 8) item.append(el("ul", { class: "tree" }, ...shown.map((k) => render(k, depth + 1))));
      if (kids.length > shown.length) item.append(el("div", { class: "more", text: `+${kids.length - shown.length} more` }));
      return item;
    };
    this.treeBox.append(el("ul", { class: "tree" }, render(root, 0)));
    if (nodes.length) this.treeBox.append(el("div", { class: "scores", text: `${nodes.length} nodes` }));
  }

  askHuman(data) {
    const input = el("input", { type: "text", placeholder: "your answer", "aria-label": "answer to the question" });
    const button = el("button", { type: "submit", text: "Answer" });
    const box = el("div", { class: "human" }, el("div", { class: "q", text: "Question for you: " + data.question }));
    const form = el("form", {
      onsubmit: async (ev) => {
        ev.preventDefault();
        if (!input.value.trim()) return;
        const you = el("div", { class: "you", text: "you answered: " + input.value });
        form.replaceWith(you);  // at once: the run may finish before the reply to this request arrives
        try {
          await api(`/runs/${this.run.id}/answer`, {
            method: "POST", body: JSON.stringify({ answer: input.value, interrupt_id: data.interrupt_id || null }),
          });
        } catch (err) {
          you.replaceWith(form);
          notice(err.message);
        }
      },
    }, input, button);
    box.append(form);
    this.humanBox.append(box);
    if (!this.done) setTimeout(() => input.focus(), 0);
  }

  async finish(status) {
    this.done = true;
    this.setStatus(status);
    for (const form of this.humanBox.querySelectorAll("form")) form.replaceWith(el("div", { class: "you", text: "(closed)" }));
    try {
      const run = await api(`/runs/${this.run.id}`);
      const c = run.costs || {};
      if (c.llm_calls != null) {
        this.footer.textContent = `${c.llm_calls} LLM calls · ${(c.prompt_tokens || 0) + (c.completion_tokens || 0)} tokens · ${Number(c.llm_seconds || 0).toFixed(1)} s in the model`;
      }
    } catch (_) { /* the footer is optional */ }
    loadRuns();
  }
}

// ---------- streaming ----------

async function follow(turn) {
  let failures = 0;
  while (!turn.done && !turn.aborter.signal.aborted) {
    try {
      const response = await fetch(`/runs/${turn.run.id}/events`, {
        headers: headers({ "Last-Event-ID": String(turn.lastId) }), signal: turn.aborter.signal,
      });
      if (!response.ok) { const body = await response.json().catch(() => ({})); throw new Error((body.error || {}).message || response.statusText); }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const ev = { event: "message", data: "" };
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const i = line.indexOf(":");
            const name = i < 0 ? line : line.slice(0, i);
            const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
            if (name === "data") ev.data += (ev.data ? "\n" : "") + val; else ev[name] = val;
          }
          if (!ev.data) continue;
          const data = JSON.parse(ev.data);
          if (ev.id) turn.lastId = Number(ev.id);
          const box = $("#conversation");
          const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
          if (ev.event === "end") { await turn.finish(data.status); if (atBottom) box.scrollTop = box.scrollHeight; return; }
          if (ev.event === "status") turn.setStatus(data.status);
          else turn.handle(ev.event, data);
          if (atBottom) box.scrollTop = box.scrollHeight;  // follow the stream unless the reader scrolled up
          failures = 0;
        }
      }
    } catch (err) {
      if (turn.aborter.signal.aborted) return;
      failures += 1;
      if (failures > 5) { notice("lost the event stream: " + err.message); return; }
    }
    await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** failures, 8000)));  // then resume after lastId
  }
}

const turns = [];

function clearConversation(text) {
  for (const turn of turns.splice(0)) turn.aborter.abort();
  state.current = null;
  $("#conversation").replaceChildren(...(text ? [el("p", { class: "empty", text })] : []));
}

function show(run) {
  const box = $("#conversation");
  box.querySelector(".empty")?.remove();
  const turn = new Turn(run);
  turns.push(turn);
  state.current = turn;
  box.append(turn.node);
  turn.node.scrollIntoView({ block: "start" });
  follow(turn);
  return turn;
}

// ---------- the page ----------

async function loadStrategies() {
  state.strategies = await api("/strategies");
  const select = $("#strategy");
  select.replaceChildren(...state.strategies.map((s) => el("option", { value: s.name, title: s.description, text: s.name })));
  const saved = localStorage.getItem("ponder.strategy");
  select.value = state.strategies.some((s) => s.name === saved) ? saved : (state.strategies.find((s) => s.name === "cot") || state.strategies[0] || {}).name;
}

async function loadRuns() {
  let runs = [];
  try { runs = (await api("/runs?limit=40")).runs; } catch (_) { return; }
  $("#runs").replaceChildren(...runs.map((run) => el("li", {
    "data-run": run.id, class: state.current && state.current.run.id === run.id ? "active" : "",
    onclick: () => { clearConversation(); show(run); loadRuns(); },
  }, el("span", { class: "q", text: run.input.question }),
  el("span", { class: "meta", text: `${run.strategy} · ${run.status} · ${new Date(run.created_at * 1000).toLocaleString()}` }))));
}

async function ask(ev) {
  ev.preventDefault();
  const question = $("#question").value.trim();
  if (!question) return;
  notice("");
  $("#send").disabled = true;
  try {
    const run = await api("/runs", {
      method: "POST",
      body: JSON.stringify({ strategy: $("#strategy").value, input: { question, family: $("#family").value } }),
    });
    $("#question").value = "";
    show(run);
    loadRuns();
  } catch (err) {
    notice(err.message);
  } finally {
    $("#send").disabled = false;
  }
}

async function start() {
  $("#apikey").value = apiKey();
  $("#apikey").addEventListener("change", () => { localStorage.setItem("ponder.apiKey", $("#apikey").value.trim()); notice(""); start(); });
  $("#strategy").addEventListener("change", () => localStorage.setItem("ponder.strategy", $("#strategy").value));
  $("#ask").onsubmit = ask;
  $("#question").onkeydown = (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#ask").requestSubmit(); } };
  $("#new-chat").onclick = () => { clearConversation("New conversation."); loadRuns(); };
  try { await loadStrategies(); } catch (err) { notice(err.message); }
  loadRuns();
}

start();
