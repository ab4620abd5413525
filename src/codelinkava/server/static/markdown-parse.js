// @ts-check
// The Markdown parser, safe by construction and free of the DOM.
//
// Text in, a tree of plain objects out: elements ({tag, attrs, children}) whose
// tags and attributes come from ALLOWED only, and text ({text}) that is only
// ever text. Nothing here parses HTML or touches `document`: raw HTML in the
// source is text like any other, and markdown.js turns the tree into DOM nodes
// with createElement and text nodes. Only http:, https: and mailto: URLs become
// links; anything else stays text. This module runs as it is in the page and in
// node (tests/js/).
//
// Supported: paragraphs, headings, **bold**, *italic*, ~~strike~~, `code`,
// fenced code blocks (with a copy button), ordered and unordered lists (nested),
// tables, blockquotes, links, autolinks and bare URLs, horizontal rules.
//
// Cost: every scan is linear in the text (emphasis by CommonMark's delimiter
// algorithm with its "openers bottom"; link destinations within a budget).

/**
 * @typedef {{text: string}} MdText
 * @typedef {{tag: string, attrs: Record<string, string>, children: MdNode[]}} MdElement
 * @typedef {MdText | MdElement} MdNode
 */

/**
 * A block of the source; `key` identifies its rendering (equal keys, equal trees).
 * @typedef {{type: "paragraph", text: string, key: string}
 *   | {type: "heading", level: number, text: string, key: string}
 *   | {type: "hr", key: string}
 *   | {type: "code", lang: string, code: string, key: string}
 *   | {type: "quote", children: Block[], key: string}
 *   | {type: "list", ordered: boolean, start: number, tight: boolean, items: ListItem[], key: string}
 *   | {type: "table", head: string[], align: string[], rows: string[][], key: string}} Block
 * @typedef {{lines: string[], contentIndent: number, blocks: Block[]}} ListItem
 */

/**
 * Every element the tree may hold, with the attributes it may carry. Nothing else
 * is ever made: markdown.js refuses anything outside this list.
 * @type {ReadonlyMap<string, readonly string[]>}
 */
export const ALLOWED = new Map(
  Object.entries({
    p: [],
    br: [],
    hr: [],
    strong: [],
    em: [],
    del: [],
    code: [],
    blockquote: [],
    ul: [],
    ol: ["start"],
    li: [],
    h3: ["class"],
    h4: ["class"],
    h5: ["class"],
    h6: ["class"],
    pre: ["tabindex"],
    div: ["class"],
    span: ["class", "title"],
    button: ["type", "class", "aria-label"],
    table: [],
    thead: [],
    tbody: [],
    tr: [],
    th: ["class"],
    td: ["class"],
    a: ["href", "rel", "target", "title"],
  }),
);

/** Elements without content or closing tag in HTML. */
const VOID = new Set(["br", "hr"]);

const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const MAX_DEPTH = 8; // nesting (quotes, lists, emphasis) past which text stays text
const MAX_URL = 2048;

/**
 * The URL as a link target if it is an absolute http(s) or mailto URL, else null.
 * @param {unknown} raw
 * @returns {string | null}
 */
export function safeUrl(raw) {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > MAX_URL) return null;
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null; // relative or malformed: not a link
  }
  return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
}

// The tree --------------------------------------------------------------------------

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {MdNode[]} [children]
 * @returns {MdElement}
 */
function el(tag, attrs = {}, children = []) {
  return { tag, attrs, children };
}

/** Appends `text` to `children`, joined to a text node already last there. */
function pushText(/** @type {MdNode[]} */ children, /** @type {string} */ text) {
  if (!text) return;
  const last = children.at(-1);
  if (last && "text" in last) last.text += text;
  else children.push({ text });
}

/** @param {string} href @param {MdNode[]} children */
function linkElement(href, children, title = "") {
  const attrs = { href, rel: "noopener noreferrer", target: "_blank" };
  return el("a", title ? { ...attrs, title } : attrs, children);
}

/**
 * The tree as HTML, escaped as a browser's innerHTML writes it. For tests and
 * tools: the page never parses HTML, it builds nodes (markdown.js).
 * @param {MdNode | MdNode[]} nodes
 * @returns {string}
 */
export function toHtml(nodes) {
  if (Array.isArray(nodes)) return nodes.map(toHtml).join("");
  if ("text" in nodes) return escapeHtml(nodes.text, false);
  const attrs = Object.entries(nodes.attrs)
    .map(([name, value]) => ` ${name}="${escapeHtml(value, true)}"`)
    .join("");
  if (VOID.has(nodes.tag)) return `<${nodes.tag}${attrs}>`;
  return `<${nodes.tag}${attrs}>${toHtml(nodes.children)}</${nodes.tag}>`;
}

/** @param {string} text @param {boolean} attribute */
function escapeHtml(text, attribute) {
  let out = text.replace(/&/g, "&amp;").replace(/\u00a0/g, "&nbsp;");
  if (attribute) out = out.replace(/"/g, "&quot;");
  return out.replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// Blocks ------------------------------------------------------------------------

const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/;
const HR = /^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
const TABLE_DELIM = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

/** @typedef {{block: Block, next: number}} Found */

/** @param {string} line */
function isBlank(line) {
  return line.trim() === "";
}

/** @param {string} line */
function indentOf(line) {
  let n = 0;
  while (n < line.length && line.charCodeAt(n) === 32) n++;
  return n;
}

/** @param {string} line @param {number} count */
function stripIndent(line, count) {
  const n = Math.min(count, indentOf(line));
  return line.slice(n);
}

/** @param {string | undefined} raw */
function headingText(raw) {
  // "# Title ##" -> "Title": drop a closing run of # that follows a space.
  let text = (raw || "").trimEnd();
  let end = text.length;
  while (end > 0 && text[end - 1] === "#") end--;
  if (end === 0) return "";
  if (end < text.length && (text[end - 1] === " " || text[end - 1] === "\t")) {
    text = text.slice(0, end).trimEnd();
  }
  return text;
}

/** @param {string} line @param {string} fence */
function isClosingFence(line, fence) {
  const indent = indentOf(line);
  if (indent > 3 || line.charCodeAt(indent) !== fence.charCodeAt(0)) return false;
  let j = indent;
  while (j < line.length && line[j] === fence[0]) j++;
  return j - indent >= fence.length && line.slice(j).trim() === "";
}

/** @param {string} line */
function tableCells(line) {
  let text = line.trim();
  if (text.startsWith("|")) text = text.slice(1);
  if (text.endsWith("|") && !text.endsWith("\\|")) text = text.slice(0, -1);
  const cells = [];
  let cell = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && text[i + 1] === "|") {
      cell += "|";
      i++;
    } else if (c === "|") {
      cells.push(cell.trim());
      cell = "";
    } else {
      cell += c;
    }
  }
  cells.push(cell.trim());
  return cells;
}

/** @param {string[]} lines @param {number} i */
function tableStart(lines, i) {
  if (i + 1 >= lines.length || !lines[i].includes("|") || !TABLE_DELIM.test(lines[i + 1])) {
    return null;
  }
  const head = tableCells(lines[i]);
  const delim = tableCells(lines[i + 1]);
  if (head.length !== delim.length) return null;
  const align = delim.map((d) => {
    const left = d.startsWith(":");
    const right = d.endsWith(":");
    return left && right ? "center" : right ? "right" : left ? "left" : "";
  });
  return { head, align };
}

/** @param {string} line */
function listMarker(line) {
  const m = ITEM.exec(line);
  if (!m || HR.test(line)) return null;
  const marker = m[2];
  const ordered = marker.length > 1 || (marker >= "0" && marker <= "9");
  return {
    indent: m[1].length,
    marker,
    ordered,
    kind: ordered ? marker.at(-1) : marker,
    start: ordered ? Number.parseInt(marker, 10) : 1,
    content: m[4] ?? "",
    contentIndent: m[4] ? m[1].length + marker.length + Math.min(m[3].length, 4) : m[1].length + marker.length + 1,
  };
}

/** Whether `line` starts a block that ends a paragraph. */
function interruptsParagraph(/** @type {string} */ line) {
  if (HEADING.test(line) || HR.test(line) || QUOTE.test(line) || FENCE.test(line)) return true;
  const item = listMarker(line);
  return item !== null && item.content.trim() !== "" && (!item.ordered || item.start === 1);
}

/**
 * The blocks of `lines`, in order.
 * @param {string[]} lines
 * @param {number} [depth] how deep in quotes and lists these lines are
 * @returns {Block[]}
 */
export function parseBlocks(lines, depth = 0) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    if (isBlank(lines[i])) {
      i++;
      continue;
    }
    const found =
      fencedCode(lines, i) ??
      heading(lines, i) ??
      rule(lines, i) ??
      blockQuote(lines, i, depth) ??
      list(lines, i, depth) ??
      table(lines, i) ??
      paragraph(lines, i);
    blocks.push(found.block);
    i = found.next;
  }
  return blocks;
}

/** @param {string[]} lines @param {number} i @returns {Found | null} */
function fencedCode(lines, i) {
  const m = FENCE.exec(lines[i]);
  if (!m) return null;
  const indent = m[1].length;
  const fence = m[2];
  const lang = m[3].slice(0, 40);
  const body = [];
  let j = i + 1;
  let closed = false;
  for (; j < lines.length; j++) {
    if (isClosingFence(lines[j], fence)) {
      closed = true;
      break;
    }
    body.push(indent ? stripIndent(lines[j], indent) : lines[j]);
  }
  const code = body.join("\n");
  return { block: { type: "code", lang, code, key: `code\u0000${lang}\u0000${code}` }, next: closed ? j + 1 : j };
}

/** @param {string[]} lines @param {number} i @returns {Found | null} */
function heading(lines, i) {
  const m = HEADING.exec(lines[i]);
  if (!m) return null;
  const text = headingText(m[2]);
  const level = m[1].length;
  return { block: { type: "heading", level, text, key: `h${level}\u0000${text}` }, next: i + 1 };
}

/** @param {string[]} lines @param {number} i @returns {Found | null} */
function rule(lines, i) {
  return HR.test(lines[i]) ? { block: { type: "hr", key: "hr" }, next: i + 1 } : null;
}

/** @param {string[]} lines @param {number} i @param {number} depth @returns {Found | null} */
function blockQuote(lines, i, depth) {
  if (!QUOTE.test(lines[i])) return null;
  const inner = [];
  let j = i;
  for (; j < lines.length; j++) {
    const q = QUOTE.exec(lines[j]);
    if (q) inner.push(q[1]);
    else if (!isBlank(lines[j]) && !interruptsParagraph(lines[j])) inner.push(lines[j]);
    else break;
  }
  const src = inner.join("\n");
  /** @type {Block} */
  const block =
    depth < MAX_DEPTH
      ? { type: "quote", children: parseBlocks(inner, depth + 1), key: `q\u0000${src}` }
      : { type: "paragraph", text: src, key: `p\u0000${src}` };
  return { block, next: j };
}

/** @param {string[]} lines @param {number} i @param {number} depth @returns {Found | null} */
function list(lines, i, depth) {
  const first = listMarker(lines[i]);
  if (!first || depth >= MAX_DEPTH) return null;
  const { items, tight, next } = listItems(lines, i, first);
  let end = next;
  while (end > i && isBlank(lines[end - 1])) end--;
  for (const item of items) {
    while (item.lines.length && item.lines.at(-1) === "") item.lines.pop();
    item.blocks = parseBlocks(item.lines, depth + 1);
  }
  const src = lines.slice(i, end).join("\n");
  return {
    block: { type: "list", ordered: first.ordered, start: first.start, tight, items, key: `l\u0000${src}` },
    next,
  };
}

/**
 * The items of the list that starts at line `i`, their lines not parsed yet.
 * @param {string[]} lines
 * @param {number} i
 * @param {NonNullable<ReturnType<typeof listMarker>>} first
 */
function listItems(lines, i, first) {
  /** @type {ListItem[]} */
  const items = [];
  /** @type {ListItem | null} */
  let current = null;
  let blank = false;
  let tight = true;
  let j = i;
  for (; j < lines.length; j++) {
    const l = lines[j];
    if (isBlank(l)) {
      blank = true;
      if (current) current.lines.push("");
      continue;
    }
    const indent = indentOf(l);
    const item = indent <= first.indent + 1 ? listMarker(l) : null;
    if (item) {
      if (item.kind !== first.kind) break;
      if (blank && current) tight = false;
      current = { lines: [item.content], contentIndent: item.contentIndent, blocks: [] };
      items.push(current);
      blank = false;
      continue;
    }
    // Not a marker, so an item is open: the first line was one.
    const open = /** @type {ListItem} */ (current);
    if (indent >= open.contentIndent || (indent > first.indent + 1 && listMarker(l))) {
      if (blank) tight = false; // a blank line between blocks of an item
      open.lines.push(stripIndent(l, open.contentIndent));
      blank = false;
      continue;
    }
    if (blank || interruptsParagraph(l)) break;
    open.lines.push(l.trimStart()); // a lazy continuation line
  }
  return { items, tight, next: j };
}

/** @param {string[]} lines @param {number} i @returns {Found | null} */
function table(lines, i) {
  const start = tableStart(lines, i);
  if (!start) return null;
  const rows = [];
  let j = i + 2;
  for (; j < lines.length; j++) {
    const l = lines[j];
    if (isBlank(l) || !l.includes("|") || interruptsParagraph(l)) break;
    rows.push(tableCells(l));
  }
  const src = lines.slice(i, j).join("\n");
  return { block: { type: "table", head: start.head, align: start.align, rows, key: `t\u0000${src}` }, next: j };
}

/** @param {string[]} lines @param {number} i @returns {Found} */
function paragraph(lines, i) {
  const para = [lines[i].trimStart()];
  let j = i + 1;
  for (; j < lines.length; j++) {
    const l = lines[j];
    if (isBlank(l) || interruptsParagraph(l) || tableStart(lines, j)) break;
    para.push(l.trimStart());
  }
  const text = para.join("\n");
  return { block: { type: "paragraph", text, key: `p\u0000${text}` }, next: j };
}

// Inline --------------------------------------------------------------------------

const WHITESPACE = /\s/;
const ALNUM = /[\p{L}\p{N}]/u;
const PUNCTUATION = /[\p{P}\p{S}]/u;
const AUTOLINK = /<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>/y;
const AUTOMAIL = /<([^\s<>@()[\]\\,;:"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>/y;
const BARE_URL = /https?:\/\/[^\s<>"'`]+/y;
const TRAILING_PUNCT = ".,:;!?'\"*_~";
const MAX_EMPHASIS_DEPTH = 16;

/** @param {number} code */
function isPunct(code) {
  return (
    (code >= 33 && code <= 47) ||
    (code >= 58 && code <= 64) ||
    (code >= 91 && code <= 96) ||
    (code >= 123 && code <= 126)
  );
}

/**
 * One item of an inline scan: text, a finished node, a delimiter run (`ch` set)
 * or emphasis wrapping items (`tag` set), linked in source order.
 * @typedef {{
 *   prev?: Item | null, next?: Item | null, text?: string, node?: MdNode,
 *   ch?: string, count?: number, orig?: number, open?: boolean, close?: boolean,
 *   tag?: string, children?: Item[], level?: number,
 * }} Item
 * @typedef {Item & {ch: string, count: number, orig: number, open: boolean, close: boolean, text: string}} Delimiter
 */

/** The items of one inline scan, with the delimiter runs among them. */
class Items {
  /** @param {string} t @param {number} start */
  constructor(t, start) {
    this.t = t;
    /** @type {Item} */
    this.head = { next: null, prev: null };
    this.tail = this.head;
    /** @type {Delimiter[]} */
    this.delimiters = [];
    this.textStart = start; // where the text not yet pushed begins
  }

  /** @template {Item} T @param {T} item @returns {T} */
  push(item) {
    item.prev = this.tail;
    item.next = null;
    this.tail.next = item;
    this.tail = item;
    return item;
  }

  /** Pushes the text from textStart up to `upto`. */
  flush(/** @type {number} */ upto) {
    if (upto > this.textStart) this.push({ text: this.t.slice(this.textStart, upto) });
  }
}

/**
 * The inline Markdown of one block. Emphasis follows CommonMark's delimiter
 * algorithm (runs of * _ ~ matched closer by closer with the nearest opener),
 * with "openers bottom" so that unmatched closers never rescan: linear time.
 */
class Inline {
  /** @param {string} text */
  constructor(text) {
    this.t = text;
    this.escaped = new Uint8Array(text.length); // 1: the character is escaped by the backslash before it
    /** @type {Map<number, number>} "[" position -> "]" position */
    this.bracket = new Map();
    this.budget = 64 * 1024; // characters link destinations may scan, in all: bounded work
    const spans = codeSpans(text);
    /** @type {Map<number, {from: number, to: number, end: number}>} opener position -> span */
    this.code = spans.code;
    this.markEscapesAndBrackets(spans.inCode);
  }

  /** Escapes and link brackets, outside code spans. */
  markEscapesAndBrackets(/** @type {Uint8Array} */ inCode) {
    const text = this.t;
    const n = text.length;
    const stack = [];
    for (let i = 0; i < n; i++) {
      if (inCode[i]) continue;
      const c = text.charCodeAt(i);
      if (c === 92 && i + 1 < n && isPunct(text.charCodeAt(i + 1)) && !inCode[i + 1]) {
        this.escaped[i + 1] = 1;
        i++;
      } else if (c === 91) {
        stack.push(i);
      } else if (c === 93 && stack.length) {
        this.bracket.set(/** @type {number} */ (stack.pop()), i);
      }
    }
  }

  /**
   * The inline content of text[start:end).
   * @param {number} start @param {number} end @param {number} depth
   * @returns {MdNode[]}
   */
  render(start, end, depth, inLink = false) {
    // Pass 1: a linked list of items -- text, finished nodes, and delimiter runs.
    const items = new Items(this.t, start);
    const plain = depth >= MAX_DEPTH;
    let i = start;
    while (i < end) i = this.step(items, i, end, depth, inLink, plain);
    items.flush(end);
    // Pass 2: emphasis, closer by closer. Pass 3: the tree.
    matchEmphasis(items.delimiters);
    /** @type {MdNode[]} */
    const out = [];
    for (let item = items.head.next; item; item = item.next) appendItem(out, item);
    return out;
  }

  /**
   * Scans what starts at `i`, pushing what it makes; returns where to go on.
   * @param {Items} items @param {number} i @param {number} end @param {number} depth
   * @param {boolean} inLink @param {boolean} plain
   */
  step(items, i, end, depth, inLink, plain) {
    const t = this.t;
    const c = t.charCodeAt(i);
    if (this.escaped[i]) return i + 1;
    if (c === 92 && i + 1 < end && this.escaped[i + 1]) {
      items.flush(i);
      items.textStart = i + 1; // the escaped character is kept as text, the backslash dropped
      return i + 2;
    }
    if (c === 96) return this.codeSpan(items, i, end);
    if (c === 10) {
      items.flush(i);
      items.push({ node: el("br") });
      return (items.textStart = i + 1);
    }
    if (plain) return i + 1;
    if (c === 42 || c === 95 || c === 126) return this.delimiterRun(items, i, end);
    const made = inLink ? null : this.linkAt(i, end, depth);
    if (!made) return i + 1;
    items.flush(i);
    items.push({ node: made.node });
    return (items.textStart = made.next);
  }

  /** A code span at the backtick run at `i`, or the run as text. @param {Items} items @param {number} i @param {number} end */
  codeSpan(items, i, end) {
    const t = this.t;
    const span = this.code.get(i);
    if (span && span.end <= end) {
      items.flush(i);
      items.push({ node: el("code", {}, [{ text: codeSpanText(t.slice(span.from, span.to)) }]) });
      return (items.textStart = span.end);
    }
    while (i < end && t.charCodeAt(i) === 96) i++;
    return i;
  }

  /** A run of * _ or ~ at `i`: a delimiter that may open or close emphasis. @param {Items} items @param {number} i @param {number} end */
  delimiterRun(items, i, end) {
    const t = this.t;
    items.flush(i);
    const ch = t[i];
    let j = i;
    while (j < end && t[j] === ch) j++;
    let { open, close } = flanking(i > 0 ? t[i - 1] : " ", j < t.length ? t[j] : " ", ch);
    if (ch === "~" && j - i !== 2) open = close = false; // ~~strike~~ only
    const item = items.push({ text: t.slice(i, j), ch, count: j - i, orig: j - i, open, close });
    if (open || close) items.delimiters.push(item);
    return (items.textStart = j);
  }

  /** A link, autolink or bare URL at `i`, or null. @param {number} i @param {number} end @param {number} depth */
  linkAt(i, end, depth) {
    const t = this.t;
    const c = t.charCodeAt(i);
    if (c === 91 || (c === 33 && t.charCodeAt(i + 1) === 91)) return this.link(i, end, depth);
    if (c === 60) return this.autolink(i, end);
    if ((c === 104 || c === 72) && (i === 0 || !ALNUM.test(t[i - 1]))) return this.bareUrl(i, end);
    return null;
  }

  /**
   * `[text](dest "title")` or `![alt](dest)` at `i`, or null.
   * @param {number} i @param {number} end @param {number} depth
   * @returns {{node: MdNode, next: number} | null}
   */
  link(i, end, depth) {
    const t = this.t;
    const image = t.charCodeAt(i) === 33;
    const open = image ? i + 1 : i;
    const close = this.bracket.get(open);
    if (close === undefined || close + 1 >= end || t.charCodeAt(close + 1) !== 40) return null;
    if (this.budget <= 0) return null;
    const from = close + 2;
    const target = this.linkTarget(from, Math.min(end, from + MAX_URL + 256, from + this.budget));
    this.budget -= Math.max(0, target.at - from);
    if (target.dest === null || t[target.at] !== ")") return null;
    const { dest, title } = target;
    const href = safeUrl(dest);
    /** @type {MdNode[]} */
    let children;
    if (image) {
      const label = t.slice(open + 1, close).trim();
      children = [{ text: label ? `[image: ${label}]` : "[image]" }];
    } else if (close > open + 1) {
      children = this.render(open + 1, close, depth + 1, true);
    } else {
      children = dest ? [{ text: dest }] : [];
    }
    const node = href
      ? linkElement(href, children, title)
      : // not a link: the text, and where it pointed
        el("span", { class: "not-a-link", title: `Not a link: ${dest}`.slice(0, 300) }, children);
    return { node, next: target.at + 1 };
  }

  /**
   * The destination and title of a link from `from` (after "(") to `limit`, and
   * where the scan stopped (`at`: the ")" when there is one); dest is null when
   * there is none.
   * @param {number} from @param {number} limit
   */
  linkTarget(from, limit) {
    const t = this.t;
    let j = from;
    while (j < limit && (t[j] === " " || t[j] === "\t")) j++;
    const d = t[j] === "<" ? this.angleDestination(j, limit) : this.plainDestination(j, limit);
    if (d.dest === null) return { dest: null, title: "", at: d.at };
    j = d.at;
    while (j < limit && WHITESPACE.test(t[j])) j++;
    let title = "";
    const quote = t[j];
    if (quote === '"' || quote === "'" || quote === "(") {
      const q = this.find(quote === "(" ? 41 : quote.charCodeAt(0), j + 1, limit);
      if (q < 0) return { dest: null, title: "", at: limit };
      title = t.slice(j + 1, q);
      j = q + 1;
      while (j < limit && WHITESPACE.test(t[j])) j++;
    }
    return { dest: d.dest, title, at: j };
  }

  /** `<dest>` at `j`. @param {number} j @param {number} limit @returns {{dest: string | null, at: number}} */
  angleDestination(j, limit) {
    const gt = this.find(62, j + 1, limit);
    if (gt < 0) return { dest: null, at: limit };
    const dest = this.t.slice(j + 1, gt);
    return { dest: dest.includes("\n") ? null : dest, at: gt + 1 };
  }

  /** A destination up to whitespace or an unbalanced ")". @param {number} j @param {number} limit */
  plainDestination(j, limit) {
    const t = this.t;
    const start = j;
    let parens = 0;
    for (; j < limit; j++) {
      const c = t[j];
      if (c === "\\" && j + 1 < limit) {
        j++;
        continue;
      }
      if (WHITESPACE.test(c)) break;
      if (c === "(") parens++;
      if (c === ")") {
        if (parens === 0) break;
        parens--;
      }
    }
    return { dest: t.slice(start, j).replace(/\\([!-/:-@[-`{-~])/g, "$1"), at: j };
  }

  /** The first position of the character `code` in [from, limit), or -1. @param {number} code @param {number} from @param {number} limit */
  find(code, from, limit) {
    for (let k = from; k < limit; k++) if (this.t.charCodeAt(k) === code) return k;
    return -1;
  }

  /** `<https://...>` or `<me@example.com>` at `i`, or null. @param {number} i @param {number} end */
  autolink(i, end) {
    const t = this.t;
    for (const [pattern, prefix] of /** @type {const} */ ([
      [AUTOLINK, ""],
      [AUTOMAIL, "mailto:"],
    ])) {
      pattern.lastIndex = i;
      const m = pattern.exec(t);
      if (!m || pattern.lastIndex > end) continue;
      const href = safeUrl(prefix + m[1]);
      if (!href) return null; // <javascript:...> stays text
      return { node: linkElement(href, [{ text: m[1] }]), next: pattern.lastIndex };
    }
    return null;
  }

  /** A bare http(s) URL at `i`, without the punctuation that ends a sentence. @param {number} i @param {number} end */
  bareUrl(i, end) {
    BARE_URL.lastIndex = i;
    const m = BARE_URL.exec(this.t);
    if (!m) return null;
    let url = m[0].slice(0, Math.min(MAX_URL, end - i));
    for (;;) {
      const last = url.at(-1) ?? "";
      if (last && TRAILING_PUNCT.includes(last)) url = url.slice(0, -1);
      else if (last === ")" && count(url, "(") < count(url, ")")) url = url.slice(0, -1);
      else break;
    }
    const href = safeUrl(url);
    if (!href || url.length <= 8) return null;
    return { node: linkElement(href, [{ text: url }]), next: i + url.length };
  }
}

/**
 * The code spans of `text`: backtick runs of equal length paired left to right.
 * @param {string} text
 */
function codeSpans(text) {
  const runs = backtickRuns(text);
  /** @type {Map<number, number[]>} run length -> indexes of the runs that long */
  const byLen = new Map();
  runs.forEach((run, k) => {
    const same = byLen.get(run.len);
    if (same) same.push(k);
    else byLen.set(run.len, [k]);
  });
  /** @type {Map<number, {from: number, to: number, end: number}>} */
  const code = new Map();
  const inCode = new Uint8Array(text.length);
  const pointer = new Map();
  for (let k = 0; k < runs.length; ) {
    const run = runs[k];
    const pos = run.escaped ? run.pos + 1 : run.pos;
    const len = run.escaped ? run.len - 1 : run.len;
    const same = byLen.get(len);
    if (len === 0 || !same) {
      k++;
      continue;
    }
    let p = pointer.get(len) ?? 0;
    while (p < same.length && same[p] <= k) p++;
    pointer.set(len, p);
    if (p === same.length) {
      k++;
      continue;
    }
    const close = runs[same[p]];
    code.set(pos, { from: pos + len, to: close.pos, end: close.pos + close.len });
    inCode.fill(1, pos, close.pos + close.len);
    k = same[p] + 1;
  }
  return { code, inCode };
}

/** The runs of backticks in `text`, and whether a backslash escapes each one's first. @param {string} text */
function backtickRuns(text) {
  const n = text.length;
  const runs = [];
  for (let i = 0; i < n; ) {
    if (text.charCodeAt(i) !== 96) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && text.charCodeAt(j) === 96) j++;
    let slashes = 0;
    while (i - slashes - 1 >= 0 && text.charCodeAt(i - slashes - 1) === 92) slashes++;
    runs.push({ pos: i, len: j - i, escaped: slashes % 2 === 1 });
    i = j;
  }
  return runs;
}

/**
 * Whether a delimiter run between `before` and `after` may open and close (CommonMark's flanking rules).
 * @param {string} before @param {string} after @param {string} ch
 */
function flanking(before, after, ch) {
  const spaceBefore = WHITESPACE.test(before);
  const spaceAfter = WHITESPACE.test(after);
  const punctBefore = PUNCTUATION.test(before);
  const punctAfter = PUNCTUATION.test(after);
  const left = !spaceAfter && (!punctAfter || spaceBefore || punctBefore);
  const right = !spaceBefore && (!punctBefore || spaceAfter || punctAfter);
  if (ch === "_") return { open: left && (!right || punctBefore), close: right && (!left || punctAfter) };
  return { open: left, close: right };
}

/** Pairs the delimiter runs into emphasis, wrapping the items between them. @param {Delimiter[]} delimiters */
function matchEmphasis(delimiters) {
  /** @type {Map<string, number>} */
  const bottom = new Map();
  const alive = new Set(delimiters);
  for (let k = 0; k < delimiters.length; k++) {
    const closer = delimiters[k];
    if (!closer.close || !alive.has(closer)) continue;
    while (closer.count > 0) {
      const key = `${closer.ch}${closer.open ? 1 : 0}${closer.orig % 3}`;
      const o = findOpener(delimiters, k, bottom.get(key) ?? -1, alive);
      if (o < 0) {
        bottom.set(key, k - 1);
        if (!closer.open) alive.delete(closer);
        break;
      }
      const opener = delimiters[o];
      if (!wrapEmphasis(opener, closer)) {
        alive.delete(opener);
        continue;
      }
      for (let d = o + 1; d < k; d++) alive.delete(delimiters[d]);
      if (opener.count === 0) alive.delete(opener);
    }
  }
}

/**
 * The index of the nearest opener above `floor` that `delimiters[k]` may close, or -1.
 * @param {Delimiter[]} delimiters @param {number} k @param {number} floor @param {Set<Delimiter>} alive
 */
function findOpener(delimiters, k, floor, alive) {
  const closer = delimiters[k];
  for (let o = k - 1; o > floor; o--) {
    const d = delimiters[o];
    if (!alive.has(d) || !d.open || d.ch !== closer.ch || d.count === 0) continue;
    const oddMatch =
      (d.close || closer.open) && (d.orig + closer.orig) % 3 === 0 && (d.orig % 3 !== 0 || closer.orig % 3 !== 0);
    if (!oddMatch) return o;
  }
  return -1;
}

/**
 * Wraps the items between opener and closer in em, strong or del, using up their
 * delimiters; false (and nothing done) past MAX_EMPHASIS_DEPTH.
 * @param {Delimiter} opener @param {Delimiter} closer
 */
function wrapEmphasis(opener, closer) {
  const use = closer.ch === "~" ? 2 : closer.count >= 2 && opener.count >= 2 ? 2 : 1;
  let level = 0;
  const children = [];
  for (let item = opener.next; item && item !== closer; item = item.next) {
    children.push(item);
    if (item.level) level = Math.max(level, item.level);
  }
  if (level >= MAX_EMPHASIS_DEPTH) return false;
  const tag = closer.ch === "~" ? "del" : use === 2 ? "strong" : "em";
  /** @type {Item} */
  const wrapped = { tag, children, level: level + 1, prev: opener, next: closer };
  opener.next = wrapped;
  closer.prev = wrapped;
  opener.count -= use;
  closer.count -= use;
  opener.text = opener.text.slice(0, opener.count);
  closer.text = closer.text.slice(0, closer.count);
  return true;
}

/** @param {MdNode[]} out @param {Item} item */
function appendItem(out, item) {
  if (item.node) {
    out.push(item.node);
  } else if (item.tag) {
    /** @type {MdNode[]} */
    const children = [];
    for (const child of item.children ?? []) appendItem(children, child);
    out.push(el(item.tag, {}, children));
  } else if (item.text) {
    pushText(out, item.text);
  }
}

/** @param {string} text @param {string} ch */
function count(text, ch) {
  let n = 0;
  for (const c of text) if (c === ch) n++;
  return n;
}

/** @param {string} raw */
function codeSpanText(raw) {
  const text = raw.replace(/\n/g, " ");
  if (text.length > 2 && text.startsWith(" ") && text.endsWith(" ") && text.trim() !== "") {
    return text.slice(1, -1);
  }
  return text;
}

/**
 * The inline Markdown of `text` (one block's worth).
 * @param {string} text
 * @returns {MdNode[]}
 */
export function inlineTree(text) {
  return new Inline(text).render(0, text.length, 0);
}

// Blocks as trees ---------------------------------------------------------------------

/**
 * The tree of one block. A code block's `code` element always holds exactly one
 * text node, the code (markdown.js extends it in place while it streams).
 * @param {Block} block
 * @param {boolean} [tight] a paragraph in a tight list item: a span, not a p
 * @returns {MdNode}
 */
export function blockTree(block, tight = false) {
  switch (block.type) {
    case "paragraph":
      return el(tight ? "span" : "p", {}, inlineTree(block.text));
    case "heading":
      return el(`h${Math.min(6, block.level + 2)}`, { class: `md-h${block.level}` }, inlineTree(block.text));
    case "hr":
      return el("hr");
    case "code":
      return codeTree(block.lang, block.code);
    case "quote":
      return el(
        "blockquote",
        {},
        block.children.map((child) => blockTree(child)),
      );
    case "list":
      return listTree(block);
    case "table":
      return tableTree(block);
    default:
      return { text: "" };
  }
}

/** @param {string} lang @param {string} code */
function codeTree(lang, code) {
  const head = el("div", { class: "code-head" }, [
    el("span", { class: "code-lang" }, [{ text: lang || "code" }]),
    el("button", { type: "button", class: "copy", "aria-label": "Copy code" }, [{ text: "Copy" }]),
  ]);
  // tabindex: a wide block scrolls with the keyboard too
  const pre = el("pre", { tabindex: "0" }, [el("code", {}, [{ text: code }])]);
  return el("div", { class: "code-block" }, [head, pre]);
}

/** @param {Extract<Block, {type: "list"}>} block */
function listTree(block) {
  const attrs = block.ordered && block.start !== 1 ? { start: String(block.start) } : {};
  const items = block.items.map((item) =>
    el(
      "li",
      {},
      item.blocks.map((child) => blockTree(child, block.tight)),
    ),
  );
  return el(block.ordered ? "ol" : "ul", attrs, items);
}

/** @param {Extract<Block, {type: "table"}>} block */
function tableTree(block) {
  /** @param {string} tag @param {string} text @param {string} align */
  const cell = (tag, text, align) => el(tag, align ? { class: `align-${align}` } : {}, inlineTree(text));
  const head = el("tr", {}, block.head.map((text, k) => cell("th", text, block.align[k])));
  const rows = block.rows.map((row) =>
    el(
      "tr",
      {},
      block.head.map((_, k) => cell("td", row[k] ?? "", block.align[k])),
    ),
  );
  const tableEl = el("table", {}, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  return el("div", { class: "table-wrap" }, [tableEl]);
}

/**
 * The blocks of a Markdown text.
 * @param {string} text
 * @returns {Block[]}
 */
export function parseMarkdown(text) {
  return parseBlocks(text.split(/\r?\n/));
}

/**
 * The tree of a whole Markdown text: what renderMarkdown (markdown.js) builds.
 * @param {string} text
 * @returns {MdNode[]}
 */
export function markdownTree(text) {
  return parseMarkdown(text).map((block) => blockTree(block));
}
