// @ts-check
// What the page keeps, all of it in this browser: conversations in localStorage,
// the API key in sessionStorage (this tab only) or, when the user asks, in
// localStorage. Nothing is stored on the server.

const CONVERSATIONS = "codelinkava.conversations.v1";
const MODEL = "codelinkava.model";
const KEY = "codelinkava.apiKey";

/**
 * @typedef {{ttft: number | null, tps: number | null, tokens: number | null}} Stats
 * @typedef {{role: "user" | "assistant", content: string, cut?: string, stopped?: boolean,
 *   stats?: Stats}} Message
 * @typedef {{id: string, title: string, named: boolean, created: number, updated: number,
 *   model: string | null, system: string, temperature: number | null, messages: Message[]}} Conversation
 */

/** A fresh conversation id. @returns {string} */
export function newId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * An empty conversation.
 * @param {string | null} [model]
 * @returns {Conversation}
 */
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

/** @param {any} m @returns {Message | null} */
function cleanMessage(m) {
  if (!m || (m.role !== "user" && m.role !== "assistant") || typeof m.content !== "string") {
    return null;
  }
  /** @type {Message} */
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

/** @param {any} c @returns {Conversation | null} */
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
    messages: /** @type {Message[]} */ (c.messages.map(cleanMessage).filter(Boolean)),
  };
}

/**
 * What was saved, checked field by field.
 * @returns {{conversations: Conversation[], current: string | null}}
 */
export function loadConversations() {
  try {
    const saved = JSON.parse(localStorage.getItem(CONVERSATIONS) || "null");
    if (saved && Array.isArray(saved.conversations)) {
      const conversations = /** @type {Conversation[]} */ (saved.conversations.map(cleanConversation).filter(Boolean));
      const current = typeof saved.current === "string" ? saved.current : null;
      return { conversations, current };
    }
  } catch {
    // unreadable: start afresh
  }
  return { conversations: [], current: null };
}

/**
 * Saves the conversations; false when the browser refused (storage full or off).
 * @param {Conversation[]} conversations
 * @param {string | null} current the id of the one shown
 * @returns {boolean}
 */
export function saveConversations(conversations, current) {
  try {
    // An answer with no text yet (its first token not arrived) is not worth keeping.
    /** @param {Message | null} m */
    const kept = (m) => m && !(m.role === "assistant" && m.content === "");
    const clean = conversations.map((c) => ({ ...c, messages: c.messages.map(cleanMessage).filter(kept) }));
    localStorage.setItem(CONVERSATIONS, JSON.stringify({ conversations: clean, current }));
    return true;
  } catch {
    return false;
  }
}

/** The localStorage key of the conversations (another tab's `storage` events). */
export const CONVERSATIONS_KEY = CONVERSATIONS;

/** The model last picked in this browser, or null. @returns {string | null} */
export function lastModel() {
  try {
    return localStorage.getItem(MODEL);
  } catch {
    return null;
  }
}

/** @param {string} model */
export function setLastModel(model) {
  try {
    localStorage.setItem(MODEL, model);
  } catch {
    // not kept: no harm
  }
}

/** The API key: this tab's, else the remembered one, else "". @returns {string} */
export function loadKey() {
  try {
    return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

/** Whether the key is kept in this browser ("Remember"). @returns {boolean} */
export function keyRemembered() {
  try {
    return localStorage.getItem(KEY) !== null;
  } catch {
    return false;
  }
}

/**
 * Keeps the key for this tab only, or in this browser when `remember`.
 * @param {string} key
 * @param {boolean} remember
 */
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

/** Removes the key from this tab and this browser. */
export function forgetKey() {
  try {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  } catch {
    // nothing to forget
  }
}
