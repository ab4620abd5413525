// The chat page: conversations kept in this browser, answers streamed from the
// gateway's /v1/chat/completions and rendered as Markdown while they arrive.
//
// Nothing from the model or the server is ever parsed as HTML: text goes in
// with textContent, Markdown is built node by node (markdown.js), and the page's
// Content-Security-Policy forbids inline scripts besides.

import { ApiError, StreamCut, listModels, streamChat } from "./api.js";
import { MarkdownView, renderMarkdown } from "./markdown.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);
const ui = {
  sidebar: $("sidebar"),
  list: $("conversations"),
  newChat: $("new-chat"),
  openSidebar: $("open-sidebar"),
  closeSidebar: $("close-sidebar"),
  title: $("title"),
  model: $("model"),
  keyButton: $("key-button"),
  system: $("system"),
  temperature: $("temperature"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeWait: $("notice-wait"),
  noticeRetry: $("notice-retry"),
  noticeClose: $("notice-close"),
  messages: $("messages"),
  empty: $("empty"),
  composer: $("composer"),
  input: $("input"),
  send: $("send"),
  stop: $("stop"),
  status: $("status"),
  keyDialog: $("key-dialog"),
  keyForm: $("key-form"),
  keyReason: $("key-reason"),
  keyInput: $("key-input"),
  keyRemember: $("key-remember"),
  keyForget: $("key-forget"),
  keyCancel: $("key-cancel"),
};

const state = {
  conversations: [],
  current: null,
  models: [],
  key: store.loadKey(),
  run: null, // the answer streaming now: {conv, answer, controller, view, frame, saveTimer}
  editing: null, // {conv, index} while the last message is being edited
  notice: null, // what the notice is about: "key", "error", "storage"
  countdown: 0,
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

async function complete(conv) {
  clearNotice();
  // Saved while it streams, so a reload keeps the part that arrived, marked as cut.
  const answer = { role: "assistant", content: "", cut: "the page was closed while it was answering" };
  conv.messages.push(answer);
  conv.updated = Date.now();
  const run = { conv, answer, controller: new AbortController(), view: null, frame: 0, saveTimer: 0 };
  state.run = run;
  state.editing = null;
  persist();
  renderList();
  if (conv.id === state.current) renderConversation();
  setBusy(true);
  announce("Answering…");

  const body = requestBody(conv, answer);
  const started = performance.now();
  let first = 0;
  let last = 0;
  let pieces = 0;
  let usage = null;
  let failure = null;
  try {
    await streamChat({
      body,
      key: state.key,
      signal: run.controller.signal,
      onText(piece) {
        const now = performance.now();
        if (!first) first = now;
        last = now;
        pieces++;
        answer.content += piece;
        schedule(run);
      },
      onUsage(value) {
        usage = value;
      },
    });
  } catch (err) {
    failure = err;
  }
  cancelAnimationFrame(run.frame);
  clearTimeout(run.saveTimer);
  state.run = null;

  delete answer.cut;
  if (first) {
    const counted = Number(usage?.completion_tokens);
    const tokens = counted > 0 ? counted : pieces;
    const seconds = (last - first) / 1000;
    answer.stats = {
      ttft: first - started,
      tokens,
      tps: tokens > 1 && seconds > 0 ? (tokens - 1) / seconds : null,
    };
  }
  const stopped = run.controller.signal.aborted;
  let keep = true;
  if (stopped) {
    answer.stopped = true;
    keep = answer.content !== "";
    announce("Stopped.");
  } else if (failure) {
    if (answer.content) {
      answer.cut = failure.message;
      announce(`The answer was cut off: ${failure.message}`);
    } else {
      keep = false;
      showError(failure);
    }
  } else {
    announce("Answer complete.");
  }
  const index = conv.messages.indexOf(answer);
  if (!keep && index >= 0) conv.messages.splice(index, 1);
  conv.updated = Date.now();
  persist();
  setBusy(false);
  if (conv.id === state.current) {
    const stick = nearBottom();
    const el = ui.messages.querySelector(`.msg[data-index="${index}"]`);
    if (el && keep) el.replaceWith(messageElement(conv, answer, index));
    else if (el) el.remove();
    if (!conv.messages.length) ui.messages.replaceChildren(ui.empty);
    refreshActions();
    if (stick) scrollToBottom();
  }
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

function startEdit(index) {
  const conv = current();
  const message = conv?.messages[index];
  const el = ui.messages.querySelector(`.msg[data-index="${index}"]`);
  if (!message || !el || state.run) return;
  state.editing = { conv, index };
  refreshActions();
  const form = document.createElement("form");
  form.className = "edit";
  form.noValidate = true;
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.htmlFor = "edit-box";
  label.textContent = "Edited text";
  const box = document.createElement("textarea");
  box.id = "edit-box";
  box.value = message.content;
  const actions = document.createElement("div");
  actions.className = "edit-actions";
  const submit = button("Submit edit", "primary");
  submit.type = "submit";
  const cancel = button("Cancel", "");
  actions.append(submit, cancel);
  form.append(label, box, actions);
  el.querySelector(".body").replaceChildren(form);
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

function wire() {
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

  ui.noticeRetry.addEventListener("click", () => {
    clearNotice();
    regenerate();
    ui.input.focus();
  });
  ui.noticeClose.addEventListener("click", () => {
    clearNotice();
    ui.input.focus();
  });

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

  // Another tab changed the conversations: take its copy when idle here.
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
