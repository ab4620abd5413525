// @ts-check
// The chat page: conversations kept in this browser, answers streamed from the
// gateway's /v1/chat/completions and rendered as Markdown while they arrive.
//
// Nothing from the model or the server is ever parsed as HTML: text goes in
// with textContent, Markdown is built node by node (markdown.js), and the page's
// Content-Security-Policy forbids inline scripts besides.

import { ApiError, StreamCut, listModels, streamChat } from "./api.js";
import { MarkdownView, renderMarkdown } from "./markdown.js";
import * as store from "./store.js";

/** @typedef {import("./store.js").Conversation} Conversation */
/** @typedef {import("./store.js").Message} Message */
/**
 * The answer streaming now.
 * @typedef {{conv: Conversation, answer: Message, controller: AbortController,
 *   view: MarkdownView | null, frame: number, saveTimer: number}} Run
 */

/** The element `id` of index.html (always there). @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const $button = (id) => /** @type {HTMLButtonElement} */ ($(id));
/** @param {string} id */
const $input = (id) => /** @type {HTMLInputElement} */ ($(id));

const ui = {
  sidebar: $("sidebar"),
  list: $("conversations"),
  newChat: $button("new-chat"),
  openSidebar: $button("open-sidebar"),
  closeSidebar: $button("close-sidebar"),
  title: $("title"),
  model: /** @type {HTMLSelectElement} */ ($("model")),
  keyButton: $button("key-button"),
  system: /** @type {HTMLTextAreaElement} */ ($("system")),
  temperature: $input("temperature"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeWait: $("notice-wait"),
  noticeRetry: $button("notice-retry"),
  noticeClose: $button("notice-close"),
  messages: $("messages"),
  empty: $("empty"),
  composer: /** @type {HTMLFormElement} */ ($("composer")),
  input: /** @type {HTMLTextAreaElement} */ ($("input")),
  send: $button("send"),
  stop: $button("stop"),
  status: $("status"),
  keyDialog: /** @type {HTMLDialogElement} */ ($("key-dialog")),
  keyForm: /** @type {HTMLFormElement} */ ($("key-form")),
  keyReason: $("key-reason"),
  keyInput: $input("key-input"),
  keyRemember: $input("key-remember"),
  keyForget: $button("key-forget"),
  keyCancel: $button("key-cancel"),
};

const state = {
  /** @type {Conversation[]} */
  conversations: [],
  /** @type {string | null} the id of the conversation shown */
  current: null,
  /** @type {string[]} */
  models: [],
  key: store.loadKey(),
  /** @type {Run | null} the answer streaming now */
  run: null,
  /** @type {{conv: Conversation, index: number} | null} while the last message is being edited */
  editing: null,
  /** @type {string | null} what the notice is about: "key", "error", "storage", "models" */
  notice: null,
  /** @type {ReturnType<typeof setInterval> | 0} */
  countdown: 0,
  /** @type {ReturnType<typeof setTimeout> | 0} */
  saveTimer: 0,
};

// Conversations ---------------------------------------------------------------------

function current() {
  return state.conversations.find((c) => c.id === state.current) ?? null;
}

function byRecency() {
  return [...state.conversations].sort((a, b) => b.updated - a.updated);
}

function persist() {
  clearTimeout(state.saveTimer);
  state.saveTimer = 0;
  if (!store.saveConversations(state.conversations, state.current)) {
    showNotice("This browser refused to save the conversations (storage full or disabled).", {
      kind: "storage",
    });
  }
}

function persistSoon() {
  clearTimeout(state.saveTimer);
  state.saveTimer = setTimeout(persist, 300);
}

function titleFrom(text) {
  const line = text.trim().split("\n")[0].replace(/\s+/g, " ");
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || "New chat";
}

function newChat() {
  const conv = current();
  if (conv && conv.messages.length === 0 && !state.run) {
    closeSidebar();
    ui.input.focus();
    return;
  }
  const fresh = store.newConversation(conv?.model ?? store.lastModel());
  state.conversations.push(fresh);
  state.current = fresh.id;
  persist();
  renderList();
  renderConversation();
  closeSidebar();
  ui.input.focus();
}

function select(id) {
  if (id === state.current) {
    closeSidebar();
    return;
  }
  state.editing = null;
  state.current = id;
  persist();
  renderList();
  renderConversation();
  closeSidebar();
  ui.input.focus();
}

function deleteConversation(id) {
  const conv = state.conversations.find((c) => c.id === id);
  if (!conv || !window.confirm(`Delete “${conv.title}”? This cannot be undone.`)) return;
  if (state.run?.conv === conv) state.run.controller.abort();
  state.conversations = state.conversations.filter((c) => c !== conv);
  if (state.current === id) {
    state.editing = null;
    state.current = byRecency()[0]?.id ?? null;
    if (!state.current) {
      const fresh = store.newConversation(store.lastModel());
      state.conversations.push(fresh);
      state.current = fresh.id;
    }
    renderConversation();
  }
  persist();
  renderList();
  const first = ui.list.querySelector(".conv-link");
  (first ?? ui.input).focus();
}

function startRename(li, conv) {
  const link = li.querySelector(".conv-link");
  const input = document.createElement("input");
  input.type = "text";
  input.className = "rename";
  input.value = conv.title;
  input.maxLength = 200;
  input.setAttribute("aria-label", "Conversation name");
  link.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim().replace(/\s+/g, " ");
    if (save && title && title !== conv.title) {
      conv.title = title;
      conv.named = true;
      persist();
    }
    renderList();
    if (conv.id === state.current) showTitle(conv);
    ui.list.querySelector(`li[data-id="${CSS.escape(conv.id)}"] .conv-link`)?.focus();
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      finish(true);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      finish(false);
    }
  });
  input.addEventListener("blur", () => finish(true));
}

// Rendering -------------------------------------------------------------------------

function button(text, className, label) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  return b;
}

function renderList() {
  const items = byRecency().map((conv) => {
    const li = document.createElement("li");
    li.dataset.id = conv.id;
    const link = document.createElement("a");
    link.className = "conv-link";
    link.href = `#${encodeURIComponent(conv.id)}`;
    link.textContent = conv.title;
    if (conv.id === state.current) link.setAttribute("aria-current", "page");
    li.append(
      link,
      button("✎", "icon rename-button", "Rename conversation"),
      button("✕", "icon delete-button", "Delete conversation"),
    );
    return li;
  });
  ui.list.replaceChildren(...items);
}

function showTitle(conv) {
  ui.title.textContent = conv.title;
  document.title = `${conv.title} – codelinkava chat`;
}

function formatStats(stats) {
  const parts = [];
  if (Number.isFinite(stats.ttft)) parts.push(`first token ${(stats.ttft / 1000).toFixed(2)} s`);
  if (Number.isFinite(stats.tps)) parts.push(`${stats.tps.toFixed(1)} tokens/s`);
  if (Number.isFinite(stats.tokens)) parts.push(`${stats.tokens} token${stats.tokens === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

function messageElement(conv, message, index) {
  const el = document.createElement("article");
  el.className = `msg ${message.role}`;
  el.dataset.index = String(index);
  const who = document.createElement("p");
  who.className = "who";
  who.textContent = message.role === "user" ? "You" : "Assistant";
  const body = document.createElement("div");
  body.className = message.role === "user" ? "body plain" : "body md";
  el.append(who, body);
  const live = state.run && state.run.answer === message;
  if (message.role === "user") {
    body.textContent = message.content;
  } else if (live) {
    state.run.view = new MarkdownView(body);
    state.run.view.update(message.content);
    el.setAttribute("aria-busy", "true");
  } else {
    body.append(renderMarkdown(message.content));
  }
  if (message.role === "assistant") {
    const meta = document.createElement("p");
    meta.className = "meta";
    if (live) meta.textContent = "Answering…";
    else if (message.stats) meta.textContent = formatStats(message.stats);
    if (meta.textContent) el.append(meta);
    if (!live && (message.cut || message.stopped)) {
      const mark = document.createElement("p");
      mark.className = message.cut ? "cut" : "stopped";
      if (message.cut) {
        const label = document.createElement("strong");
        label.textContent = "Cut off:";
        mark.append(label, ` ${message.cut}`);
      } else {
        mark.textContent = "Stopped";
      }
      el.append(mark);
    }
  }
  return el;
}

function renderConversation() {
  const conv = current();
  if (!conv) return;
  if (state.run && state.run.conv !== conv) state.run.view = null; // it streams off screen
  showTitle(conv);
  ui.system.value = conv.system;
  ui.temperature.value = conv.temperature ?? "";
  ui.temperature.removeAttribute("aria-invalid");
  fillModels();
  const nodes = conv.messages.map((m, i) => messageElement(conv, m, i));
  ui.messages.replaceChildren(...(nodes.length ? nodes : [ui.empty]));
  refreshActions();
  scrollToBottom();
}

/** Edit on the last question, Regenerate on the last answer: only when idle. */
function refreshActions() {
  for (const node of ui.messages.querySelectorAll(".msg-actions")) node.remove();
  const conv = current();
  if (!conv || state.run || state.editing) return;
  const messages = conv.messages;
  const last = messages.length - 1;
  if (last < 0) return;
  const add = (i, b) => {
    const el = ui.messages.querySelector(`.msg[data-index="${i}"]`);
    if (!el) return;
    let actions = el.querySelector(".msg-actions");
    if (!actions) {
      actions = document.createElement("div");
      actions.className = "msg-actions";
      el.append(actions);
    }
    actions.append(b);
  };
  let lastUser = last;
  while (lastUser >= 0 && messages[lastUser].role !== "user") lastUser--;
  if (lastUser >= 0) add(lastUser, button("Edit", "edit-button"));
  add(last, button("Regenerate", "regenerate-button"));
}

function fillModels() {
  const conv = current();
  const ids = [...state.models];
  if (conv?.model && !ids.includes(conv.model)) ids.push(conv.model);
  ui.model.replaceChildren(...ids.map((id) => new Option(id, id)));
  const remembered = store.lastModel();
  const want = conv?.model ?? (ids.includes(remembered) ? remembered : ids[0]);
  if (want) ui.model.value = want;
  ui.model.disabled = ids.length === 0;
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function announce(text) {
  ui.status.textContent = text;
}

// Notices ----------------------------------------------------------------------------

function showNotice(text, { kind = "error", retry = false, wait = null } = {}) {
  clearInterval(state.countdown);
  state.notice = kind;
  ui.noticeText.textContent = text;
  ui.noticeRetry.hidden = !retry;
  ui.noticeRetry.disabled = false;
  ui.noticeWait.hidden = wait === null;
  if (wait !== null) {
    const until = Date.now() + wait * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        ui.noticeWait.textContent = `The server asks to wait ${wait} s (Retry-After) – ${left} s left.`;
        ui.noticeRetry.disabled = true;
      } else {
        ui.noticeWait.textContent = `The server asked to wait ${wait} s (Retry-After) – you can retry now.`;
        ui.noticeRetry.disabled = false;
        clearInterval(state.countdown);
      }
    };
    tick();
    state.countdown = setInterval(tick, 250);
  }
  ui.notice.hidden = false;
}

function clearNotice(kind = null) {
  if (kind && state.notice !== kind) return;
  clearInterval(state.countdown);
  state.notice = null;
  ui.notice.hidden = true;
  ui.noticeText.textContent = "";
  ui.noticeWait.textContent = "";
}

function showError(err) {
  if (err instanceof ApiError) {
    const { status, message } = err;
    if (status === 401) {
      showNotice(`The gateway refused the API key (HTTP 401): ${message}`, { kind: "key", retry: true });
      askKey(state.key ? "The gateway refused this key (HTTP 401). Enter the right one." : "This gateway needs an API key.");
    } else if (status === 429) {
      showNotice(`Too many requests (HTTP 429): ${message}`, { retry: true, wait: err.retryAfter });
    } else if (status === 503) {
      showNotice(`The service is busy or unavailable (HTTP 503): ${message}`, { retry: true, wait: err.retryAfter });
    } else if (status === 0) {
      showNotice("The gateway could not be reached: is it still running?", { retry: true });
    } else if (status >= 500) {
      showNotice(`The upstream failed before answering (HTTP ${status}): ${message}`, { retry: true });
    } else {
      showNotice(`The gateway refused the request (HTTP ${status}): ${message}`, { retry: true });
    }
  } else if (err instanceof StreamCut) {
    showNotice(`The upstream failed before answering: ${err.message}`, { retry: true });
  } else {
    showNotice(`Something went wrong: ${err?.message ?? err}`, { retry: true });
  }
}

// The key ----------------------------------------------------------------------------

function askKey(reason) {
  ui.keyReason.textContent = reason;
  ui.keyRemember.checked = store.keyRemembered();
  ui.keyInput.removeAttribute("aria-invalid");
  if (!ui.keyDialog.open) {
    ui.keyInput.value = "";
    ui.keyDialog.showModal();
  }
  ui.keyInput.focus();
}

async function loadModels() {
  try {
    state.models = await listModels(state.key);
    fillModels();
    if (state.notice === "key") {
      showNotice("The gateway accepted the key. Retry to send the message again.", { retry: true });
    }
    clearNotice("models");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      askKey(state.key ? "The gateway refused this key (HTTP 401). Check it and enter it again." : "This gateway needs an API key.");
    } else {
      showNotice(`Could not list the models: ${err.message}`, { kind: "models" });
    }
  }
}

// Answers ----------------------------------------------------------------------------

function requestBody(conv, answer) {
  const messages = [];
  if (conv.system.trim()) messages.push({ role: "system", content: conv.system });
  for (const m of conv.messages) {
    if (m !== answer && m.content) messages.push({ role: m.role, content: m.content });
  }
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  const model = ui.model.value || conv.model;
  if (model) body.model = model;
  if (conv.temperature !== null) body.temperature = conv.temperature;
  return body;
}

function setBusy(busy) {
  const sendHadFocus = document.activeElement === ui.send;
  const stopHadFocus = document.activeElement === ui.stop;
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.messages.setAttribute("aria-busy", String(busy));
  if (busy && sendHadFocus) ui.stop.focus();
  if (!busy && (stopHadFocus || document.activeElement === document.body)) ui.input.focus();
}

function paint(run) {
  run.frame = 0;
  if (!run.view) return;
  const stick = nearBottom();
  run.view.update(run.answer.content);
  if (stick) scrollToBottom();
}

function schedule(run) {
  // At most one render per animation frame, however fast the pieces come.
  if (!run.frame) run.frame = requestAnimationFrame(() => paint(run));
  if (!run.saveTimer) {
    run.saveTimer = setTimeout(() => {
      run.saveTimer = 0;
      persist();
    }, 1000);
  }
}

function stop() {
  state.run?.controller.abort();
}

/**
 * Asks for the next answer in `conv` and streams it in; a failure is shown, never thrown.
 * @param {Conversation} conv
 */
async function complete(conv) {
  const run = startRun(conv);
  const streamed = await streamAnswer(run);
  cancelAnimationFrame(run.frame);
  clearTimeout(run.saveTimer);
  state.run = null;

  const { answer } = run;
  const keep = settle(run, streamed);
  const index = conv.messages.indexOf(answer);
  if (!keep && index >= 0) conv.messages.splice(index, 1);
  conv.updated = Date.now();
  persist();
  setBusy(false);
  if (conv.id === state.current) showSettled(conv, answer, index, keep);
}

/** The run of a new, empty answer at the end of `conv`, shown as streaming. @param {Conversation} conv */
function startRun(conv) {
  clearNotice();
  // Saved while it streams, so a reload keeps the part that arrived, marked as cut.
  /** @type {Message} */
  const answer = { role: "assistant", content: "", cut: "the page was closed while it was answering" };
  conv.messages.push(answer);
  conv.updated = Date.now();
  /** @type {Run} */
  const run = { conv, answer, controller: new AbortController(), view: null, frame: 0, saveTimer: 0 };
  state.run = run;
  state.editing = null;
  persist();
  renderList();
  if (conv.id === state.current) renderConversation();
  setBusy(true);
  announce("Answering…");
  return run;
}

/**
 * Streams the answer into `run.answer`, with its timing; the error it ended with, if any.
 * @param {Run} run
 */
async function streamAnswer(run) {
  const { answer } = run;
  const body = requestBody(run.conv, answer);
  const got = { started: performance.now(), first: 0, last: 0, pieces: 0, usage: null, failure: null };
  try {
    await streamChat({
      body,
      key: state.key,
      signal: run.controller.signal,
      onText(piece) {
        const now = performance.now();
        if (!got.first) got.first = now;
        got.last = now;
        got.pieces++;
        answer.content += piece;
        schedule(run);
      },
      onUsage(value) {
        got.usage = value;
      },
    });
  } catch (err) {
    got.failure = err;
  }
  return got;
}

/**
 * Marks the answer with its stats and how it ended (stopped, cut); whether to keep it.
 * @param {Run} run
 * @param {Awaited<ReturnType<typeof streamAnswer>>} got
 */
function settle(run, got) {
  const { answer } = run;
  delete answer.cut;
  if (got.first) {
    const counted = Number(got.usage?.completion_tokens);
    const tokens = counted > 0 ? counted : got.pieces;
    const seconds = (got.last - got.first) / 1000;
    answer.stats = {
      ttft: got.first - got.started,
      tokens,
      tps: tokens > 1 && seconds > 0 ? (tokens - 1) / seconds : null,
    };
  }
  if (run.controller.signal.aborted) {
    answer.stopped = true;
    announce("Stopped.");
    return answer.content !== "";
  }
  if (!got.failure) {
    announce("Answer complete.");
  } else if (answer.content) {
    answer.cut = got.failure.message;
    announce(`The answer was cut off: ${got.failure.message}`);
  } else {
    showError(got.failure);
    return false;
  }
  return true;
}

/**
 * Replaces the streaming answer on screen with the finished one (or removes it).
 * @param {Conversation} conv @param {Message} answer @param {number} index @param {boolean} keep
 */
function showSettled(conv, answer, index, keep) {
  const stick = nearBottom();
  const el = ui.messages.querySelector(`.msg[data-index="${index}"]`);
  if (el && keep) el.replaceWith(messageElement(conv, answer, index));
  else if (el) el.remove();
  if (!conv.messages.length) ui.messages.replaceChildren(ui.empty);
  refreshActions();
  if (stick) scrollToBottom();
}

function send() {
  const text = ui.input.value;
  if (state.run || !text.trim()) return;
  const conv = current();
  conv.messages.push({ role: "user", content: text });
  if (!conv.named && conv.messages.filter((m) => m.role === "user").length === 1) {
    conv.title = titleFrom(text);
  }
  ui.input.value = "";
  complete(conv);
}

function regenerate() {
  const conv = current();
  if (state.run || !conv || conv.messages.length === 0) return;
  if (conv.messages.at(-1).role === "assistant") conv.messages.pop();
  if (conv.messages.length && conv.messages.at(-1).role === "user") complete(conv);
}

/** The form that edits `text`, with its text box and its Cancel button. @param {string} text */
function editForm(text) {
  const form = document.createElement("form");
  form.className = "edit";
  form.noValidate = true;
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.htmlFor = "edit-box";
  label.textContent = "Edited text";
  const box = document.createElement("textarea");
  box.id = "edit-box";
  box.value = text;
  const actions = document.createElement("div");
  actions.className = "edit-actions";
  const submit = button("Submit edit", "primary");
  submit.type = "submit";
  const cancel = button("Cancel", "");
  actions.append(submit, cancel);
  form.append(label, box, actions);
  return { form, box, cancel };
}

/** Replaces the question at `index` with a form to edit and resend it. @param {number} index */
function startEdit(index) {
  const conv = current();
  const message = conv?.messages[index];
  const el = ui.messages.querySelector(`.msg[data-index="${index}"]`);
  if (!message || !el || state.run) return;
  state.editing = { conv, index };
  refreshActions();
  const { form, box, cancel } = editForm(message.content);
  el.querySelector(".body")?.replaceChildren(form);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);

  const finish = () => {
    state.editing = null;
    renderConversation();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!box.value.trim() || state.run) return;
    message.content = box.value;
    conv.messages.length = index + 1; // the answers after it are replaced
    if (!conv.named && index === conv.messages.findIndex((m) => m.role === "user")) {
      conv.title = titleFrom(box.value);
    }
    state.editing = null;
    complete(conv);
    ui.input.focus();
  });
  cancel.addEventListener("click", () => {
    finish();
    ui.input.focus();
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      finish();
      ui.input.focus();
    }
  });
}

// Copying code -----------------------------------------------------------------------

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.className = "visually-hidden";
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// The sidebar at phone width ---------------------------------------------------------

function openSidebar() {
  ui.sidebar.classList.add("open");
  ui.openSidebar.setAttribute("aria-expanded", "true");
  ui.newChat.focus();
}

function closeSidebar() {
  if (!ui.sidebar.classList.contains("open")) return;
  ui.sidebar.classList.remove("open");
  ui.openSidebar.setAttribute("aria-expanded", "false");
}

// Wiring -----------------------------------------------------------------------------

/** Connects the page's controls to what they do. */
function wire() {
  wireComposer();
  wireSidebar();
  wireMessages();
  wireSettings();
  wireNotice();
  wireKeyDialog();
  wireOtherTabs();
}

/** Sending and stopping: the composer, Enter, Escape. */
function wireComposer() {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
      event.preventDefault();
      send();
    }
  });
  ui.stop.addEventListener("click", stop);
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented || ui.keyDialog.open) return;
    if (state.run) {
      event.preventDefault();
      stop();
    } else if (ui.sidebar.classList.contains("open")) {
      closeSidebar();
      ui.openSidebar.focus();
    }
  });
}

/** The list of conversations: new, select, rename, delete; the sidebar at phone width. */
function wireSidebar() {
  ui.newChat.addEventListener("click", newChat);
  ui.openSidebar.addEventListener("click", openSidebar);
  ui.closeSidebar.addEventListener("click", () => {
    closeSidebar();
    ui.openSidebar.focus();
  });
  ui.list.addEventListener("click", (event) => {
    const li = event.target.closest("li[data-id]");
    if (!li) return;
    const conv = state.conversations.find((c) => c.id === li.dataset.id);
    if (!conv) return;
    if (event.target.closest(".conv-link")) {
      event.preventDefault();
      select(conv.id);
    } else if (event.target.closest(".rename-button")) {
      startRename(li, conv);
    } else if (event.target.closest(".delete-button")) {
      deleteConversation(conv.id);
    }
  });
}

/** The buttons inside the conversation: Copy, Regenerate, Edit. */
function wireMessages() {
  ui.messages.addEventListener("click", async (event) => {
    const target = event.target;
    if (target.closest(".copy")) {
      const btn = target.closest(".copy");
      const code = btn.closest(".code-block")?.querySelector("code")?.textContent ?? "";
      const ok = await copyText(code);
      btn.textContent = ok ? "Copied" : "Copy failed";
      setTimeout(() => {
        btn.textContent = "Copy";
      }, 1500);
    } else if (target.closest(".regenerate-button")) {
      regenerate();
      ui.input.focus();
    } else if (target.closest(".edit-button")) {
      startEdit(Number(target.closest(".msg").dataset.index));
    }
  });
}

/** The model, the system prompt and the temperature of the conversation. */
function wireSettings() {
  ui.model.addEventListener("change", () => {
    const conv = current();
    conv.model = ui.model.value;
    store.setLastModel(ui.model.value);
    persist();
  });
  ui.system.addEventListener("input", () => {
    current().system = ui.system.value;
    persistSoon();
  });
  ui.temperature.addEventListener("input", () => {
    const raw = ui.temperature.value.trim();
    const value = Number(raw);
    const conv = current();
    if (raw === "") {
      conv.temperature = null;
      ui.temperature.removeAttribute("aria-invalid");
    } else if (Number.isFinite(value) && value >= 0 && value <= 2) {
      conv.temperature = value;
      ui.temperature.removeAttribute("aria-invalid");
    } else {
      ui.temperature.setAttribute("aria-invalid", "true");
      return;
    }
    persistSoon();
  });
}

/** Retry and Dismiss on the notice. */
function wireNotice() {
  ui.noticeRetry.addEventListener("click", () => {
    clearNotice();
    regenerate();
    ui.input.focus();
  });
  ui.noticeClose.addEventListener("click", () => {
    clearNotice();
    ui.input.focus();
  });
}

/** The API key dialog. */
function wireKeyDialog() {
  ui.keyButton.addEventListener("click", () => askKey(state.key ? "Change or forget the key this page sends." : "Enter the gateway's API key."));
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.keyInput.value.trim();
    if (!key) {
      ui.keyInput.setAttribute("aria-invalid", "true");
      ui.keyInput.focus();
      return;
    }
    store.saveKey(key, ui.keyRemember.checked);
    state.key = key;
    ui.keyDialog.close();
    ui.input.focus();
    loadModels();
  });
  ui.keyForget.addEventListener("click", () => {
    store.forgetKey();
    state.key = "";
    ui.keyDialog.close();
    loadModels();
  });
  ui.keyCancel.addEventListener("click", () => ui.keyDialog.close());
}

/** Another tab changed the conversations: take its copy when idle here. */
function wireOtherTabs() {
  window.addEventListener("storage", (event) => {
    if (event.key !== store.CONVERSATIONS_KEY || state.run || state.editing) return;
    const saved = store.loadConversations();
    state.conversations = saved.conversations;
    if (!current()) state.current = byRecency()[0]?.id ?? null;
    if (!current()) {
      newChat();
      return;
    }
    renderList();
    renderConversation();
  });
}

function start() {
  const saved = store.loadConversations();
  state.conversations = saved.conversations;
  state.current = saved.current;
  if (!current()) state.current = byRecency()[0]?.id ?? null;
  if (!current()) {
    const fresh = store.newConversation(store.lastModel());
    state.conversations.push(fresh);
    state.current = fresh.id;
    persist();
  }
  wire();
  renderList();
  renderConversation();
  ui.input.focus();
  document.documentElement.dataset.ready = "true";
  loadModels();
}

start();
