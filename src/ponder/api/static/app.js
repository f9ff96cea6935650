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

function plural(n, word) { return `${Number(n).toLocaleString()} ${word}${n === 1 ? "" : "s"}`; }

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

// Markdown with math, for answers and reasoning. Math (\[..\], \(..\), $$..$$) is set aside before Markdown (which
// would eat its backslashes), the Markdown's HTML is sanitized (DOMPurify: no HTML from the model reaches the page
// unescaped), then each formula is typeset by KaTeX, which escapes what it is given.
const MATH = /\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\(([\s\S]+?)\\\)/g;

function escapeHtml(text) { return el("span", { text }).innerHTML; }

// HTML written by the model is shown as text, never interpreted (and DOMPurify below is the second guard).
marked.use({ renderer: { html: (token) => escapeHtml(token.text || token.raw || "") } });

function renderMarkdown(node, text) {
  const formulas = [];
  const held = String(text || "").replace(MATH, (_, a, b, c) => {
    formulas.push({ tex: a ?? b ?? c, display: c == null });
    return `@@PONDERMATH${formulas.length - 1}@@`;
  });
  let html = DOMPurify.sanitize(marked.parse(held, { breaks: true, gfm: true }));
  html = html.replace(/@@PONDERMATH(\d+)@@/g, (_, i) => {
    const f = formulas[Number(i)];
    try {
      return katex.renderToString(f.tex, { displayMode: f.display, throwOnError: false, trust: false });
    } catch (_) {
      return el("code", { text: f.tex }).outerHTML;
    }
  });
  node.innerHTML = html;
  node.classList.add("md");
}

// A model reply in the trace: JSON pretty-printed, anything else as written.
function replyText(text) {
  const t = String(text || "").trim();
  if (!/^[[{]/.test(t)) return text;
  try { return JSON.stringify(JSON.parse(t), null, 2); } catch (_) { return text; }
}

// What a strategy's model step did, in words (its internal purpose names stay in the trace's data).
function purposeWords(purpose) {
  const p = String(purpose || "").replace(/ x(\d+)$/, (_, n) => ` (${n} at once)`);
  const words = { reason: "reasoning", answer: "writing the answer", "write program": "writing a program",
    repair: "fixing a program", plan: "planning", think: "thinking", act: "choosing the next action",
    refine: "revising the plan", verify: "checking the facts", "chain of thought": "reasoning" };
  return words[p] || p.replace(/_/g, " ");
}

const RUN_ID = /\b(run|conv|eval)_[0-9a-f]{8,}\b/g;

// A small highlighter for the code the tools run (Python, shell): keywords, strings, comments, numbers. Written here
// because the page has no build step and a full highlighter (highlight.js, ~100 KB) is more than tool cards need.
const KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else except " +
  "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield print " +
  "echo cd ls cat grep sed awk export then fi do done esac").split(" "));
const TOKEN = /(#[^\n]*)|("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;

function codeBlock(code, cls = "") {
  const pre = el("pre", { class: "code " + cls });
  let last = 0;
  for (const m of code.matchAll(TOKEN)) {
    if (m.index > last) pre.append(code.slice(last, m.index));
    const kind = m[1] ? "c" : m[2] ? "s" : m[3] ? "n" : KEYWORDS.has(m[4]) ? "k" : null;
    pre.append(kind ? el("span", { class: "tok-" + kind, text: m[0] }) : m[0]);
    last = m.index + m[0].length;
  }
  pre.append(code.slice(last));
  return pre;
}

// A planner thought is capped in length by its schema, so it can stop mid-list ("... 2. sum them 3."): shown to
// the last whole item, with an ellipsis, rather than with a dangling fragment.
function tidyThought(text) {
  const t = String(text || "").trim();
  if (/[.!?:)]$/.test(t) && !/\b\d+\.$/.test(t)) return t;
  return t.replace(/\s*\b\d+\.$/, "") + " …";
}

// The arguments of a tool call: code as code, other fields as "name: value" lines.
function argsView(args) {
  const box = el("div", { class: "args" });
  for (let [key, value] of Object.entries(args || {})) {
    if (key === "thought" && typeof value === "string") value = tidyThought(value);
    if (typeof value === "string" && (key === "code" || key === "command" || key === "script" || value.includes("\n"))) {
      box.append(el("div", { class: "argname", text: key }), codeBlock(value));
    } else {
      box.append(el("div", { class: "arg", text: `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}` }));
    }
  }
  return box;
}

// A tool's output as text: stdout, stderr (marked), then any other fields; strings as they are.
function outputView(output) {
  if (output == null || output === "") return el("pre", { class: "output", text: "(no output)" });
  if (typeof output === "string") return el("pre", { class: "output", text: short(output) });
  if (typeof output !== "object") return el("pre", { class: "output", text: String(output) });
  const box = el("div", { class: "output" });
  const { stdout, stderr, ...rest } = output;
  if (stdout) box.append(el("pre", { class: "stdout", text: short(String(stdout)) }));
  if (stderr) box.append(el("pre", { class: "stderr", text: short(String(stderr)) }));
  for (const [key, value] of Object.entries(rest)) {
    if (value == null || value === "" || (Array.isArray(value) && !value.length)) continue;
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 1);
    box.append(text.includes("\n") || text.length > 80
      ? el("div", {}, el("div", { class: "argname", text: key }), el("pre", { text: short(text) }))
      : el("div", { class: "arg", text: `${key}: ${text}` }));
  }
  if (!box.firstChild) box.append(el("pre", { text: "(no output)" }));
  return box;
}

// The words of a progress event (the CLI says the same: ponder.agents._live.describe_progress).
function progressText(p) {
  let what = "waiting for the model";
  if (p.phase === "reading" && p.prompt_tokens) {
    what = `reading the prompt: ${p.prompt_done.toLocaleString()} of ${p.prompt_tokens.toLocaleString()} tokens (${Math.floor(100 * p.prompt_done / p.prompt_tokens)}%)`;
  } else if (p.phase === "writing") {
    what = `writing: ${p.tokens.toLocaleString()} tokens` + (p.tokens_per_s ? ` at ${p.tokens_per_s.toFixed(1)} tok/s` : "") + (p.field ? `, the ${p.field.replace(/_/g, " ")}` : "");
  }
  return `${what} · ${Math.round(p.seconds)} s`;
}

const STEP_WORDS = {
  reason: "reasoning", sample: "sampling answers", vote: "voting", plan: "planning", act: "acting", refine: "revising the plan",
  start: "started", resume: "resumed", restarted: "restarted", human_answer: "your answer", verify: "checking the facts",
  answer: "writing the answer", "chain and program": "reasoning and writing a program", "sample more": "trying again",
  choose: "choosing the answer", compare: "comparing the programs", chosen: "chosen", search: "searching",
  expand: "trying the next candidates", "write program": "writing a program", repair: "fixing the program",
};
const STATUS_WORDS = { queued: "waiting to start", running: "working", waiting: "waiting for you",
  succeeded: "done", failed: "failed", cancelled: "stopped" };

const MODE_WORDS = { cot: "chain of thought", program: "program (ran)" };

function shownAnswer(key) {  // the selection layer's answer keys: numbers as numbers ("10.0" reads 10)
  const n = Number(key);
  return key !== "" && Number.isFinite(n) ? String(n) : key;
}

// ---------- one question and its answer ----------

class Turn {
  constructor(run) {
    this.run = run;
    this.lastId = 0;
    this.tools = new Map();
    this.groups = new Map();
    this.subtaskNames = new Map();
    this.calls = new Map();  // model call number -> its latest progress event
    this.traceGroups = new Map();  // the trace's parts: a planner subtask id -> its node
    this.looseCalls = [];
    this.traceTools = new Map();  // tool call id -> its card in the trace  // model calls not yet claimed by the strategy step (llm_call) that made them
    this.llmSteps = 0;
    this.streams = new Map();
    this.done = false;
    this.aborter = new AbortController();
    this.badge = el("span", { class: "badge " + (run.status === "cancelled" ? "stopped" : run.status),
      text: STATUS_WORDS[run.status] || run.status });
    this.steps = el("ol", { class: "steps" });
    this.streamBox = el("div", { class: "section stream-section" });
    this.planBox = el("div", { class: "section plan-section" });
    this.toolBox = el("div", { class: "section tool-section" });
    this.evidenceBox = el("div", { class: "section evidence-section" });
    this.treeBox = el("div", { class: "section tree-section" });
    this.humanBox = el("div", { class: "human-section" });
    this.answer = el("div", { class: "answer" });
    this.answerNote = el("div", { class: "answer-note" });
    this.choiceBox = el("details", { class: "section choice-section" });
    this.actions = el("div", { class: "turn-actions", hidden: "" },
      el("button", { class: "secondary", type: "button", text: "Copy", title: "copy the answer",
        onclick: (e) => this.copy(e.target) }),
      el("button", { class: "secondary", type: "button", text: "Ask again", title: "ask the same question again",
        onclick: () => askAgain(this.run) }),
      el("button", { class: "secondary", type: "button", text: "Edit", title: "edit the question and send it again",
        onclick: () => editQuestion(this.run) }));
    this.started = (run.created_at || Date.now() / 1000) * 1000;
    this.nowWords = STATUS_WORDS[run.status] || "";
    this.filesBox = el("div", { class: "section files-section" });
    this.callsBox = el("div", { class: "section calls-section" });
    this.footer = el("div", { class: "costs" });
    this.live = el("span", { class: "live", "aria-live": "polite" });
    this.stopButton = el("button", { class: "stop secondary", type: "button", text: "Stop", title: "cancel this run",
      onclick: () => this.stop() });
    if (run.status && ["succeeded", "failed", "cancelled"].includes(run.status)) this.stopButton.hidden = true;
    this.status = run.status || "queued";
    this.reasoning = el("details", { class: "reasoning", open: "" },
      el("summary", { text: "Reasoning" }), this.steps, this.planBox, this.streamBox, this.toolBox,
      this.evidenceBox, this.treeBox, this.callsBox);
    const before = (run.input.conversation || []).map((t) => `${t.role}: ${t.content}`).join("\n") || run.input.context;
    const earlier = before
      ? el("details", { class: "context" }, el("summary", { text: "follows up on the conversation above" }),
        el("pre", { text: before }))
      : null;
    this.node = el("section", { class: "turn", "data-run": run.id },
      el("div", { class: "msg user" }, el("div", { class: "q", text: run.input.question }), earlier),
      el("div", { class: "msg assistant" },
        el("div", { class: "status" }, el("span", { text: run.strategy }), this.badge, this.live, this.stopButton),
        this.reasoning, this.humanBox, this.answer, this.answerNote, this.choiceBox, this.filesBox, this.footer,
        this.actions));
  }

  get question() { return this.run.input.question; }

  setStatus(status) {
    const changed = this.status !== status;
    this.status = status;
    this.badge.className = "badge " + (status === "cancelled" ? "stopped" : status);
    this.badge.textContent = STATUS_WORDS[status] || status;
    if (!["running", "queued"].includes(status) || !this.nowWords) this.nowWords = STATUS_WORDS[status] || status;
    statusBar.update();
    if (changed) loadConversations();  // the list shows the turn's true status
  }

  async copy(button) {
    try {
      await navigator.clipboard.writeText(this.answerText || this.answer.textContent);
      button.textContent = "Copied";
    } catch (_) {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  }

  async stop() {
    this.stopButton.disabled = true;
    try {
      await api(`/runs/${this.run.id}/cancel`, { method: "POST" });
    } catch (err) {
      notice(err.message);
      this.stopButton.disabled = false;
    }
  }

  progress(p) {
    if (p.phase === "done") this.calls.delete(p.call); else this.calls.set(p.call, p);
    const latest = [...this.calls.values()].sort((a, b) => b.ts - a.ts)[0];
    if (!latest) { this.live.textContent = ""; return; }
    const others = this.calls.size > 1 ? ` (+${this.calls.size - 1} more calls)` : "";
    this.live.textContent = `model call ${latest.call}: ${progressText(latest)}${others}`;
    this.nowWords = (this.stepWords ? this.stepWords + " — " : "") + progressText(latest).split(" · ")[0];
    statusBar.update();
  }

  section(box, title) {
    if (!box.firstChild) box.append(el("h4", { text: title }));
    return box;
  }

  handle(type, data) {
    switch (type) {
      case "step_started": {
        const words = STEP_WORDS[data.name] || data.name.replace(/_/g, " ");
        const detail = (data.detail || "").replace(RUN_ID, "").replace(/\s{2,}/g, " ").trim();
        this.steps.append(el("li", { text: words + (detail ? " — " + detail : "") }));
        this.stepWords = words;
        this.nowWords = words + (detail ? " — " + detail : "");
        statusBar.update();
        break;
      }
      case "progress": this.progress(data); break;
      case "model_call": this.modelCall(data); break;
      case "text_delta": this.text(data.field, data.text); break;
      case "llm_call": {
        const out = data.output;
        if (out && typeof out === "object" && out.reasoning && !this.streams.has("reasoning")) {
          this.text("reasoning", out.reasoning);
        }
        const tokens = (data.prompt_tokens || 0) + (data.completion_tokens || 0);
        this.llmSteps += 1;
        const line = `${purposeWords(data.purpose)}: ${plural(tokens, "token")}, ${(data.seconds || 0).toFixed(1)} s`;
        this.steps.append(el("li", { class: "llm", text: line }));
        this.traceStep(data, line);
        break;
      }
      case "tool_call": this.toolCall(data); break;
      case "tool_result": this.toolResult(data); break;
      case "evidence": this.evidence(data); break;
      case "plan": this.plan(data); break;
      case "tree": this.tree(data.tree); break;
      case "needs_human": this.askHuman(data); break;
      case "final": {
        this.answerText = data.text;
        renderMarkdown(this.answer, data.text);
        const from = ((data.result || {}).details || {}).answer_from;
        this.answerNote.textContent = from && from.startsWith("the reasoning")
          ? "The model gave no separate final answer; this is the last line of its reasoning." : "";
        this.nowWords = "answer ready";
        statusBar.update();
        this.choice(((data.result || {}).details) || {});
        break;
      }
      case "error":
        if (data.fatal && data.error.type === "Cancelled") this.answer.after(el("div", { class: "stopped-note", text: "You stopped this answer." }));
        else if (data.fatal) this.answer.after(el("div", { class: "error", text: "error: " + (data.error.message || "") + (data.error.hint ? " — " + data.error.hint : "") }));
        else this.steps.append(el("li", { class: "error", text: data.error.message || "error" }));
        break;
    }
  }

  // How the answer was chosen among several samples (the selection layer's reasons, or code chosen by behaviour).
  choice(details) {
    const sel = details.selection, beh = details.behaviour;
    if (!sel && !beh) return;
    this.choiceBox.replaceChildren(el("summary", { text: "How this answer was chosen" }));
    if (sel) {
      const rule = { majority: "one vote per sample", weighted: "each vote weighted by how sure the model was",
        best: "the sample the model was surest of" }[sel.rule] || sel.rule;
      const settled = details.settled === "agreement" ? "the chain of thought and the program agreed"
        : details.settled === "majority of both modes" ? "most samples of both kinds agreed" : "";
      const share = sel.candidates > 1 ? `; ${Math.round(sel.agreement * 100)}% of the weight is behind this answer` : "";
      this.choiceBox.append(el("div", { class: "choice-rule",
        text: `${sel.candidates} ${sel.candidates === 1 ? "answer" : "answers"}: ${rule}${share}` + (settled ? ` (${settled})` : "") }));
      const table = el("table", { class: "votes" }, el("tr", {}, el("th", { text: "answer" }),
        el("th", { text: "samples" }), el("th", { text: "weight" }), el("th", { text: "from" })));
      for (const [answer, weight] of Object.entries(sel.weights)) {
        const from = (sel.modes[answer] || []).map((m) => MODE_WORDS[m] || m).join(", ");
        table.append(el("tr", { class: String(answer) === String(Object.keys(sel.weights)[0]) ? "won" : "" },
          el("td", { text: shownAnswer(answer) }), el("td", { text: String(sel.counts[answer]) }),
          el("td", { text: sel.rule === "majority" ? String(weight) : Number(weight).toFixed(2) }), el("td", { text: from })));
      }
      this.choiceBox.append(table);
    }
    if (beh) {
      this.choiceBox.append(el("div", { class: "choice-rule", text: `programs compared by what they return: ${beh.reason}` }));
      if ((beh.inputs || []).length) {
        const table = el("table", { class: "votes behaviour" }, el("tr", {}, el("th", { text: "programs" }),
          ...beh.inputs.map((call) => el("th", { text: call }))));
        for (const group of beh.groups || []) {
          table.append(el("tr", { class: group.nodes.includes(beh.chosen) ? "won" : "" },
            el("td", { text: String(group.nodes.length) }), ...group.outputs.map((out) => el("td", { text: short(out, 80) }))));
        }
        this.choiceBox.append(table);
      }
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

  // The run's trace, a tree built from the run's own events (no tracing backend needed): the parts of the run (a
  // planner subtask; else the run itself), each with its steps in order: a model step with the calls it made (what
  // the model was asked, what it answered, tokens, seconds) and the tool calls with their arguments and output.
  traceNode(group) {
    this.section(this.callsBox, "Trace");
    if (!group) return this.callsBox;
    let node = this.traceGroups.get(group);
    if (!node) {
      node = el("details", { class: "trace-group", open: "", "data-group": group }, el("summary", { text: this.groupTitle(group) }));
      this.traceGroups.set(group, node);
      this.callsBox.append(node);
    }
    return node;
  }

  traceStep(data, line) {  // a strategy step claims the model calls made since the previous one
    const step = el("div", { class: "trace-step", "data-purpose": data.purpose }, el("div", { class: "step-head", text: line }));
    step.append(...this.looseCalls.splice(0));
    this.traceNode(data.group).append(step);
  }

  traceTool(data) {
    const card = el("details", { class: "trace-tool", "data-call": data.call_id },
      el("summary", { text: "⚙ " + data.tool }), argsView(data.args));
    this.traceNode(data.group).append(card);
    return card;
  }

  modelCall(data) {
    this.section(this.callsBox, "Trace");
    const tokens = `${plural(data.prompt_tokens, "prompt token")}` + (data.cached_tokens ? ` (${data.cached_tokens.toLocaleString()} cached)` : "") +
      ` → ${plural(data.completion_tokens, "token")}`;
    const head = `call ${data.call}: ${tokens}, ${Number(data.seconds).toFixed(1)} s` + (data.error ? " — failed" : "");
    const body = el("div", { class: "call-body" });
    const params = Object.entries(data.params || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v).slice(0, 120) : v}`);
    if (params.length) body.append(el("div", { class: "arg", text: params.join(" · ") }));
    for (const m of data.messages || []) body.append(el("div", { class: "argname", text: m.role }), el("pre", { class: "prompt", text: m.content }));
    (data.outputs || []).forEach((text, i) => body.append(
      el("div", { class: "argname", text: `reply${data.outputs.length > 1 ? " " + (i + 1) : ""} (${(data.finish_reasons || [])[i] || ""})` }),
      el("pre", { class: "reply", text: replyText(text) })));
    if (data.error) body.append(el("div", { class: "error", text: data.error }));
    const call = el("details", { class: "call", "data-call": String(data.call) }, el("summary", { text: head }), body);
    this.looseCalls.push(call);
    this.callsBox.append(call);  // shown at once; moved under its step when the step is reported
  }

  files(workspace) {
    const entries = Object.entries(workspace || {});
    if (!entries.length) return;
    this.filesBox.replaceChildren();
    this.section(this.filesBox, "Files in the workspace");
    for (const [path, text] of entries) {
      this.filesBox.append(el("details", { class: "file" }, el("summary", { text: path }),
        text == null ? el("div", { class: "more", text: "(binary or too large to show)" }) : el("pre", { text: short(text, 20000) })));
    }
  }

  // Tool calls sit under the step they belong to (the planner's subtask), so a failure is read in its place.
  groupBox(group) {
    this.section(this.toolBox, "Tool calls");
    if (!group) return this.toolBox;
    let box = this.groups.get(group);
    if (!box) {
      box = el("div", { class: "group", "data-group": group },
        el("h5", { text: this.groupTitle(group) }), el("div", { class: "group-outcome" }));
      this.groups.set(group, box);
      this.toolBox.append(box);
    }
    return box;
  }

  groupTitle(group) {  // a planner subtask by its id and name; other groups (a sampled program) by their own name
    if (!/^\d+(\.\d+)*$/.test(group)) return group;
    const name = this.subtaskNames.get(group);
    return `subtask ${group}` + (name ? ` — ${name}` : "");
  }

  toolCall(data) {
    const card = el("div", { class: "tool pending", "data-call": data.call_id },
      el("span", { class: "name", text: "⚙ " + data.tool }), argsView(data.args));
    this.tools.set(data.call_id, card);
    this.groupBox(data.group).append(card);
    this.traceTools.set(data.call_id, this.traceTool(data));
  }

  toolResult(data) {
    let card = this.tools.get(data.call_id);
    if (!card) { this.toolCall({ call_id: data.call_id, tool: data.tool, args: {}, group: data.group }); card = this.tools.get(data.call_id); }
    card.className = "tool " + (data.ok ? "ok" : "err");
    const label = data.ok ? `← ok (${(data.seconds || 0).toFixed(2)} s)` : "← failed: " + (data.error || "no reason given");
    card.append(el("div", { class: "meta", text: label }), outputView(data.output));
    const traced = this.traceTools.get(data.call_id);
    traced.classList.add(data.ok ? "ok" : "err");
    traced.querySelector("summary").textContent += " " + label;
    traced.append(outputView(data.output));
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
    const outcomes = data.outcomes || {};
    const render = (items) => el("ul", { class: "plan" }, ...(items || []).map((s) => {
      if (s.id) this.subtaskNames.set(s.id, s.name || s.goal || "");
      const outcome = outcomes[s.id];
      return el("li", {},
        el("span", { class: "node" },
          el("span", { class: "st " + (s.status || ""), text: s.status || "" }),
          el("span", { class: "label", title: s.goal || "", text: `${s.id ? s.id + " " : ""}${s.name || s.goal || ""}` })),
        outcome ? el("div", { class: "outcome " + (s.status || ""), text: (s.status === "failed" ? "why it failed: " : "found: ") + outcome }) : null,
        (s.children || s.subtasks || []).length ? render(s.children || s.subtasks) : null);
    }));
    const flat = [];
    const walk = (items) => (items || []).forEach((s) => { flat.push(s); walk(s.children || s.subtasks); });
    walk(plan.subtasks || plan.children);
    const doing = flat.findIndex((s) => s.status === "doing");
    const found = flat.filter((s) => s.status === "done" && outcomes[s.id]).pop();
    if (doing >= 0) {
      this.nowWords = `subtask ${doing + 1} of ${flat.length}: ${flat[doing].name || flat[doing].goal || ""}`;
      if (found) this.nowWords += ` · found so far: ${short(outcomes[found.id], 120)}`;
      statusBar.update();
    }
    if (plan.goal) this.planBox.append(el("div", { class: "scores", text: "goal: " + plan.goal }));
    this.planBox.append(render(plan.subtasks || plan.children));
    if (data.change) this.planBox.append(el("div", { class: "scores", text: "last change: " + data.change }));
    for (const [group, box] of this.groups) {  // names may arrive after the first tool call of a subtask
      box.querySelector("h5").textContent = this.groupTitle(group);
      const outcome = outcomes[group];
      if (outcome) box.querySelector(".group-outcome").textContent = outcome;
    }
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
    statusBar.update();
    for (const box of this.streams.values()) if (!box.classList.contains("md")) renderMarkdown(box, box.textContent);
    this.actions.hidden = status !== "succeeded";
    updateAsk();
    this.stopButton.hidden = true;
    this.calls.clear();
    this.live.textContent = "";
    for (const form of this.humanBox.querySelectorAll("form")) form.replaceWith(el("div", { class: "you", text: "(closed)" }));
    try {
      const run = await api(`/runs/${this.run.id}`);
      this.run = run;
      this.files(((run.result || {}).details || {}).workspace);
      const c = run.costs || {};
      if (c.llm_calls != null) {
        // every model request counts, retries and the typed-answer calls included
        const tokens = (c.prompt_tokens || 0) + (c.completion_tokens || 0);
        this.footer.textContent = `${plural(c.llm_calls, "model call")} · ${plural(tokens, "token")} · ${Number(c.llm_seconds || 0).toFixed(1)} s in the model`;
      }
    } catch (_) { /* the footer is optional */ }
    loadConversations();
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

// The running turn's status, in a bar that stays in view however far the conversation scrolls: what is happening
// now in plain words, how long it has run, and Stop.
const statusBar = {
  timer: null,
  turn() { return turns.find((t) => !t.done && ["queued", "running", "waiting"].includes(t.status)); },
  update() {
    const turn = this.turn();
    $("#statusbar").hidden = !turn;
    if (!turn) { clearInterval(this.timer); this.timer = null; return; }
    $("#status-words").textContent = turn.nowWords || STATUS_WORDS[turn.status] || "";
    $("#status-time").textContent = clock((Date.now() - turn.started) / 1000);
    if (!this.timer) this.timer = setInterval(() => this.update(), 1000);
  },
};

function clearConversation(text) {
  for (const turn of turns.splice(0)) turn.aborter.abort();
  state.current = null;
  state.conversationId = null;
  $("#conversation").replaceChildren(...(text ? [el("p", { class: "empty", text })] : []));
  statusBar.update();
  updateAsk();
}

function show(run, scroll = true) {
  const box = $("#conversation");
  box.querySelector(".empty")?.remove();
  const turn = new Turn(run);
  turns.push(turn);
  state.current = turn;
  box.append(turn.node);
  if (scroll) turn.node.scrollIntoView({ block: "start" });
  follow(turn);
  statusBar.update();
  updateAsk();
  return turn;
}

// ---------- the page ----------

async function loadStrategies() {
  state.strategies = await api("/strategies");
  const select = $("#strategy");
  const time = (s) => s.typical_seconds == null ? "time unknown yet" : `≈ ${clock(s.typical_seconds)} here`;
  const label = (s) => `${s.title ? `${s.title} (${s.name})` : s.name} — ${time(s)}`;
  select.replaceChildren(...state.strategies.map((s) => el("option", { value: s.name, title: s.description, text: label(s) })));
  const saved = localStorage.getItem("ponder.strategy");
  select.value = state.strategies.some((s) => s.name === saved) ? saved : (state.strategies.find((s) => s.name === "cot") || state.strategies[0] || {}).name;
  describeStrategy();
}

function describeStrategy() {
  const chosen = state.strategies.find((s) => s.name === $("#strategy").value);
  const box = $("#strategy-words");
  box.replaceChildren();
  if (!chosen) return;
  box.append(`${chosen.title || chosen.name}: ${chosen.good_for || chosen.description}.`);
  if (chosen.example) {
    box.append(" Try: ", el("a", { href: "#", class: "example", text: chosen.example,
      onclick: (e) => { e.preventDefault(); $("#question").value = chosen.example; updateAsk(); $("#question").focus(); } }));
  }
}

// ---------- the conversation: each question is a run; the earlier answered turns go with it ----------

const CONTEXT_CHARS = 6000;  // the newest part of a long conversation; the model's context is small

function conversationTurns() {
  const out = [];
  turns.forEach((turn) => {
    if (turn.status !== "succeeded") return;  // a stopped or failed turn is not part of what the model reads
    out.push({ role: "user", content: turn.question });
    const answer = (turn.answerText || turn.answer.textContent).trim();
    if (answer) out.push({ role: "assistant", content: answer });
  });
  let start = out.length, size = 0;
  while (start > 0 && size + out[start - 1].content.length <= CONTEXT_CHARS) size += out[--start].content.length;
  return out.slice(start);
}

function showFollowup() {
  const n = turns.filter((t) => t.status === "succeeded").length;
  $("#followup").hidden = !n;
  $("#followup").textContent = !n ? "" : n === 1
    ? "Follow-up: the question above goes with it. “New” starts afresh."
    : `Follow-up: the ${n} questions above go with it. “New” starts afresh.`;
}

// Ask is off while this conversation has a turn running, and the counter warns before a question is too long.
function updateAsk() {
  const busy = turns.some((t) => !t.done && ["queued", "running", "waiting"].includes(t.status));
  const size = $("#question").value.length + conversationTurns().reduce((n, t) => n + t.content.length, 0);
  const limit = state.maxChars;
  const over = limit != null && size > limit;
  $("#send").disabled = busy || over;
  $("#send").title = busy ? "wait for the answer above (or stop it)" : over ? "the question is too long" : "";
  const counter = $("#counter");
  counter.classList.toggle("over", over);
  counter.textContent = limit == null || size < limit / 2 ? ""
    : over ? `Too long for this model: ${size.toLocaleString()} characters with the conversation; it reads about ${limit.toLocaleString()}. Shorten it, or press New to leave the earlier turns out.`
    : `${size.toLocaleString()} of about ${limit.toLocaleString()} characters the model can read`;
  showFollowup();
}

// "A: red; B: blue" or "red; blue" -> [{label, text}]
function parseChoices(raw) {
  return raw.split(/[;\n]/).map((part) => part.trim()).filter(Boolean).map((part, i) => {
    const m = part.match(/^([A-Za-z0-9]{1,3})\s*[:.)]\s*(.+)$/);
    return m ? { label: m[1], text: m[2] } : { label: String.fromCharCode(65 + i), text: part };
  });
}

async function loadConversations() {
  let found = [];
  const q = $("#search").value.trim();
  try { found = (await api("/conversations?limit=60" + (q ? "&q=" + encodeURIComponent(q) : ""))).conversations; } catch (_) { return; }
  $("#conversations").replaceChildren(...found.map((c) => el("li", {
    "data-conversation": c.id, class: state.conversationId === c.id ? "active" : "",
    onclick: () => openConversation(c.id),
  }, el("span", { class: "what" }, el("span", { class: "q", text: c.title }),
    el("span", { class: "meta", text: `${plural(c.turns, "question")} · ${STATUS_WORDS[c.last_status] || ""} · ${new Date(c.updated_at * 1000).toLocaleString()}` })),
  el("button", { class: "act rename", type: "button", title: "rename", "aria-label": "rename", text: "✎",
    onclick: (e) => { e.stopPropagation(); renameConversation(c); } }),
  el("button", { class: "act delete", type: "button", title: "delete", "aria-label": "delete", text: "×",
    onclick: (e) => { e.stopPropagation(); deleteConversation(c); } }))));
  if (!found.length) $("#conversations").append(el("li", { class: "meta", text: q ? "nothing matches" : "no conversations yet" }));
}

async function openConversation(id) {
  let conversation;
  try { conversation = await api(`/conversations/${id}`); } catch (err) { notice(err.message); return; }
  clearConversation();
  state.conversationId = id;
  for (const run of conversation.runs) show(run, false);
  const last = conversation.runs[conversation.runs.length - 1];
  if (last && state.strategies && state.strategies.some((s) => s.name === last.strategy)) {
    $("#strategy").value = last.strategy;  // continue the way the conversation was going
    describeStrategy();
  }
  if (last) $("#family").value = last.input.family || "open";
  $("#conversation").scrollTop = $("#conversation").scrollHeight;
  document.body.classList.remove("runs-open");
  loadConversations();
}

async function renameConversation(c) {
  const title = prompt("New name for this conversation", c.title);
  if (title == null || !title.trim()) return;
  try {
    await api(`/conversations/${c.id}`, { method: "PATCH", body: JSON.stringify({ title }) });
  } catch (err) { notice(err.message); }
  loadConversations();
}

async function deleteConversation(c) {
  if (!confirm(`Delete “${c.title}” and its answers?`)) return;
  try {
    await api(`/conversations/${c.id}`, { method: "DELETE" });
  } catch (err) { notice(err.message); return; }
  if (state.conversationId === c.id) clearConversation("Conversation deleted.");
  loadConversations();
}

function askAgain(run) {
  $("#question").value = run.input.question;
  if (state.strategies.some((s) => s.name === run.strategy)) $("#strategy").value = run.strategy;
  $("#ask").requestSubmit();
}

function editQuestion(run) {
  $("#question").value = run.input.question;
  updateAsk();
  $("#question").focus();
}

async function ask(ev) {
  ev.preventDefault();
  const question = $("#question").value.trim();
  if (!question) { notice("Type a question first."); $("#question").focus(); return; }
  if ($("#send").disabled) return;
  notice("");
  const input = { question, family: $("#family").value };
  if (input.family === "choice") {
    input.choices = parseChoices($("#choices").value);
    if (input.choices.length < 2) { notice("A choice question needs at least two options, e.g. “A: red; B: blue”."); return; }
  }
  const conversation = conversationTurns();
  if (conversation.length) input.conversation = conversation;
  $("#send").disabled = true;
  try {
    const body = { strategy: $("#strategy").value, input };
    if (state.conversationId) body.conversation_id = state.conversationId;
    const run = await api("/runs", { method: "POST", body: JSON.stringify(body) });
    state.conversationId = run.conversation_id || state.conversationId;
    $("#question").value = "";
    show(run);
    loadConversations();
  } catch (err) {
    notice(err.message);
  } finally {
    updateAsk();
  }
}

async function start() {
  $("#apikey").value = apiKey();
  $("#apikey").addEventListener("change", () => { localStorage.setItem("ponder.apiKey", $("#apikey").value.trim()); notice(""); start(); });
  $("#strategy").addEventListener("change", () => { localStorage.setItem("ponder.strategy", $("#strategy").value); describeStrategy(); });
  $("#family").addEventListener("change", () => { $("#choices").hidden = $("#family").value !== "choice"; });
  $("#toggle-runs").onclick = () => {
    const open = document.body.classList.toggle("runs-open");
    $("#toggle-runs").setAttribute("aria-expanded", String(open));
  };
  $("#ask").onsubmit = ask;
  $("#question").onkeydown = (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#ask").requestSubmit(); } };
  $("#question").oninput = updateAsk;
  $("#status-stop").onclick = () => { const turn = statusBar.turn(); if (turn) turn.stop(); };
  let searching = null;
  $("#search").oninput = () => { clearTimeout(searching); searching = setTimeout(loadConversations, 250); };
  $("#new-chat").onclick = () => { clearConversation("New conversation."); loadConversations(); };
  try { state.maxChars = (await api("/healthz")).max_question_chars; } catch (_) { state.maxChars = null; }
  try { await loadStrategies(); } catch (err) { notice(err.message); }
  loadConversations();
  updateAsk();
}

start();
