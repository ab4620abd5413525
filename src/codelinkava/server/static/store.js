// What the page keeps, all of it in this browser: conversations in localStorage,
// the API key in sessionStorage (this tab only) or, when the user asks, in
// localStorage. Nothing is stored on the server.

const CONVERSATIONS = "codelinkava.conversations.v1";
const MODEL = "codelinkava.model";
const KEY = "codelinkava.apiKey";

export function newId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export function newConversation(model = null) {
  const now = Date.now();
  return {
    id: newId(),
    title: "New chat",
    named: false,
    created: now,
    updated: now,
    model,
    system: "",
    temperature: null,
    messages: [],
  };
}

function cleanMessage(m) {
  if (!m || (m.role !== "user" && m.role !== "assistant") || typeof m.content !== "string") {
    return null;
  }
  const out = { role: m.role, content: m.content };
  if (typeof m.cut === "string") out.cut = m.cut;
  if (m.stopped === true) out.stopped = true;
  if (m.stats && typeof m.stats === "object") {
    const { ttft, tps, tokens } = m.stats;
    out.stats = {
      ttft: Number.isFinite(ttft) ? ttft : null,
      tps: Number.isFinite(tps) ? tps : null,
      tokens: Number.isFinite(tokens) ? tokens : null,
    };
  }
  return out;
}

function cleanConversation(c) {
  if (!c || typeof c.id !== "string" || !Array.isArray(c.messages)) return null;
  const fresh = newConversation();
  const temperature = typeof c.temperature === "number" ? c.temperature : Number.NaN;
  return {
    ...fresh,
    id: c.id,
    title: typeof c.title === "string" && c.title ? c.title : fresh.title,
    named: c.named === true,
    created: Number.isFinite(c.created) ? c.created : fresh.created,
    updated: Number.isFinite(c.updated) ? c.updated : fresh.updated,
    model: typeof c.model === "string" && c.model ? c.model : null,
    system: typeof c.system === "string" ? c.system : "",
    temperature: temperature >= 0 && temperature <= 2 ? temperature : null,
    messages: c.messages.map(cleanMessage).filter(Boolean),
  };
}

/** {conversations, current}: what was saved, checked field by field. */
export function loadConversations() {
  try {
    const saved = JSON.parse(localStorage.getItem(CONVERSATIONS) || "null");
    if (saved && Array.isArray(saved.conversations)) {
      const conversations = saved.conversations.map(cleanConversation).filter(Boolean);
      const current = typeof saved.current === "string" ? saved.current : null;
      return { conversations, current };
    }
  } catch {
    // unreadable: start afresh
  }
  return { conversations: [], current: null };
}

/** Saves the conversations; false when the browser refused (storage full or off). */
export function saveConversations(conversations, current) {
  try {
    // An answer with no text yet (its first token not arrived) is not worth keeping.
    const kept = (m) => m && !(m.role === "assistant" && m.content === "");
    const clean = conversations.map((c) => ({ ...c, messages: c.messages.map(cleanMessage).filter(kept) }));
    localStorage.setItem(CONVERSATIONS, JSON.stringify({ conversations: clean, current }));
    return true;
  } catch {
    return false;
  }
}

export const CONVERSATIONS_KEY = CONVERSATIONS;

export function lastModel() {
  try {
    return localStorage.getItem(MODEL);
  } catch {
    return null;
  }
}

export function setLastModel(model) {
  try {
    localStorage.setItem(MODEL, model);
  } catch {
    // not kept: no harm
  }
}

/** The API key: this tab's, else the remembered one, else "". */
export function loadKey() {
  try {
    return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

export function keyRemembered() {
  try {
    return localStorage.getItem(KEY) !== null;
  } catch {
    return false;
  }
}

/** Keeps the key for this tab only, or in this browser when `remember`. */
export function saveKey(key, remember) {
  try {
    if (remember) {
      localStorage.setItem(KEY, key);
      sessionStorage.removeItem(KEY);
    } else {
      sessionStorage.setItem(KEY, key);
      localStorage.removeItem(KEY);
    }
  } catch {
    // storage off: the key lives in memory for this page only
  }
}

export function forgetKey() {
  try {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  } catch {
    // nothing to forget
  }
}
