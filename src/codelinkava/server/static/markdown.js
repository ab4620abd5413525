// A small Markdown renderer that is safe by construction.
//
// The model's output is untrusted. Nothing here parses HTML: every node is made
// with createElement and every piece of the source lands in the page as text
// (textContent, text nodes), so raw HTML shows as the characters it is. Only
// http:, https: and mailto: URLs become links; anything else stays text.
//
// Supported: paragraphs, headings, **bold**, *italic*, ~~strike~~, `code`,
// fenced code blocks (with a copy button), ordered and unordered lists (nested),
// tables, blockquotes, links, autolinks and bare URLs, horizontal rules.
//
// Cost: every scan is linear in the text (emphasis by CommonMark's delimiter
// algorithm with its "openers bottom"), and MarkdownView re-renders only
// the blocks whose source changed -- a code block that grows while streaming is
// extended in place by appending to its text node.

const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const MAX_DEPTH = 8; // nesting (quotes, lists, emphasis) past which text stays text
const MAX_URL = 2048;

/** The URL as a link target if it is an absolute http(s) or mailto URL, else null. */
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

// Blocks ------------------------------------------------------------------------

const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/;
const HR = /^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
const TABLE_DELIM = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

function isBlank(line) {
  return line.trim() === "";
}

function indentOf(line) {
  let n = 0;
  while (n < line.length && line.charCodeAt(n) === 32) n++;
  return n;
}

function stripIndent(line, count) {
  const n = Math.min(count, indentOf(line));
  return line.slice(n);
}

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

function isClosingFence(line, fence) {
  const indent = indentOf(line);
  if (indent > 3 || line.charCodeAt(indent) !== fence.charCodeAt(0)) return false;
  let j = indent;
  while (j < line.length && line[j] === fence[0]) j++;
  return j - indent >= fence.length && line.slice(j).trim() === "";
}

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
function interruptsParagraph(line) {
  if (HEADING.test(line) || HR.test(line) || QUOTE.test(line) || FENCE.test(line)) return true;
  const item = listMarker(line);
  return item !== null && item.content.trim() !== "" && (!item.ordered || item.start === 1);
}

/**
 * The blocks of `lines`: [{type, key, ...}]. `key` identifies a block's rendering:
 * equal keys render equal DOM.
 */
export function parseBlocks(lines, depth = 0) {
  const blocks = [];
  const n = lines.length;
  let i = 0;
  while (i < n) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    let m = FENCE.exec(line);
    if (m) {
      const indent = m[1].length;
      const fence = m[2];
      const lang = m[3].slice(0, 40);
      const body = [];
      let j = i + 1;
      let closed = false;
      for (; j < n; j++) {
        if (isClosingFence(lines[j], fence)) {
          closed = true;
          break;
        }
        body.push(indent ? stripIndent(lines[j], indent) : lines[j]);
      }
      const code = body.join("\n");
      blocks.push({ type: "code", lang, code, key: `code\u0000${lang}\u0000${code}` });
      i = closed ? j + 1 : j;
      continue;
    }
    m = HEADING.exec(line);
    if (m) {
      const text = headingText(m[2]);
      blocks.push({ type: "heading", level: m[1].length, text, key: `h${m[1].length}\u0000${text}` });
      i++;
      continue;
    }
    if (HR.test(line)) {
      blocks.push({ type: "hr", key: "hr" });
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      let j = i;
      for (; j < n; j++) {
        const q = QUOTE.exec(lines[j]);
        if (q) inner.push(q[1]);
        else if (!isBlank(lines[j]) && !interruptsParagraph(lines[j])) inner.push(lines[j]);
        else break;
      }
      const src = inner.join("\n");
      blocks.push(
        depth < MAX_DEPTH
          ? { type: "quote", children: parseBlocks(inner, depth + 1), key: `q\u0000${src}` }
          : { type: "paragraph", text: src, key: `p\u0000${src}` },
      );
      i = j;
      continue;
    }
    const first = listMarker(line);
    if (first && depth < MAX_DEPTH) {
      const items = [];
      let current = null;
      let blank = false;
      let tight = true;
      let j = i;
      for (; j < n; j++) {
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
          current = { lines: [item.content], contentIndent: item.contentIndent };
          items.push(current);
          blank = false;
          continue;
        }
        if (indent >= current.contentIndent || (indent > first.indent + 1 && listMarker(l))) {
          if (blank) tight = false; // a blank line between blocks of an item
          current.lines.push(stripIndent(l, current.contentIndent));
          blank = false;
          continue;
        }
        if (blank || interruptsParagraph(l)) break;
        current.lines.push(l.trimStart()); // a lazy continuation line
      }
      let end = j;
      while (end > i && isBlank(lines[end - 1])) end--;
      for (const item of items) {
        while (item.lines.length && item.lines.at(-1) === "") item.lines.pop();
        item.blocks = parseBlocks(item.lines, depth + 1);
      }
      const src = lines.slice(i, end).join("\n");
      blocks.push({
        type: "list",
        ordered: first.ordered,
        start: first.start,
        tight,
        items,
        key: `l\u0000${src}`,
      });
      i = j;
      continue;
    }
    const table = tableStart(lines, i);
    if (table) {
      const rows = [];
      let j = i + 2;
      for (; j < n; j++) {
        const l = lines[j];
        if (isBlank(l) || !l.includes("|") || interruptsParagraph(l)) break;
        rows.push(tableCells(l));
      }
      const src = lines.slice(i, j).join("\n");
      blocks.push({ type: "table", head: table.head, align: table.align, rows, key: `t\u0000${src}` });
      i = j;
      continue;
    }
    const para = [line.trimStart()];
    let j = i + 1;
    for (; j < n; j++) {
      const l = lines[j];
      if (isBlank(l) || interruptsParagraph(l) || tableStart(lines, j)) break;
      para.push(l.trimStart());
    }
    const text = para.join("\n");
    blocks.push({ type: "paragraph", text, key: `p\u0000${text}` });
    i = j;
  }
  return blocks;
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

function isPunct(code) {
  return (
    (code >= 33 && code <= 47) ||
    (code >= 58 && code <= 64) ||
    (code >= 91 && code <= 96) ||
    (code >= 123 && code <= 126)
  );
}

/**
 * The inline Markdown of one block. Emphasis follows CommonMark's delimiter
 * algorithm (runs of * _ ~ matched closer by closer with the nearest opener),
 * with `openersBottom` so that unmatched closers never rescan: linear time.
 */
class Inline {
  constructor(text) {
    this.t = text;
    const n = text.length;
    this.code = new Map(); // opener position -> {from, to, end}
    this.escaped = new Uint8Array(n); // 1: the character is escaped by the backslash before it
    this.bracket = new Map(); // "[" position -> "]" position
    this.budget = 64 * 1024; // characters link destinations may scan, in all: bounded work
    const inCode = new Uint8Array(n);

    // Code spans: pair backtick runs of equal length, left to right.
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
    const byLen = new Map();
    runs.forEach((run, k) => {
      if (!byLen.has(run.len)) byLen.set(run.len, []);
      byLen.get(run.len).push(k);
    });
    const pointer = new Map();
    for (let k = 0; k < runs.length; ) {
      const run = runs[k];
      const pos = run.escaped ? run.pos + 1 : run.pos;
      const len = run.escaped ? run.len - 1 : run.len;
      const list = byLen.get(len);
      if (len === 0 || !list) {
        k++;
        continue;
      }
      let p = pointer.get(len) ?? 0;
      while (p < list.length && list[p] <= k) p++;
      pointer.set(len, p);
      if (p === list.length) {
        k++;
        continue;
      }
      const close = runs[list[p]];
      this.code.set(pos, { from: pos + len, to: close.pos, end: close.pos + close.len });
      inCode.fill(1, pos, close.pos + close.len);
      k = list[p] + 1;
    }

    // Escapes and link brackets, outside code spans.
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
        this.bracket.set(stack.pop(), i);
      }
    }
  }

  /** Appends the inline content of text[start:end) to `parent`. */
  render(start, end, parent, depth, inLink = false) {
    const t = this.t;
    // Pass 1: a linked list of items -- text, finished nodes, and delimiter runs.
    const head = { next: null, prev: null };
    let tail = head;
    const push = (item) => {
      item.prev = tail;
      item.next = null;
      tail.next = item;
      tail = item;
      return item;
    };
    const delimiters = [];
    let textStart = start;
    const flush = (upto) => {
      if (upto > textStart) push({ text: t.slice(textStart, upto) });
    };
    const plain = depth >= MAX_DEPTH;
    let i = start;
    while (i < end) {
      const c = t.charCodeAt(i);
      if (this.escaped[i]) {
        i++;
        continue;
      }
      if (c === 92 && i + 1 < end && this.escaped[i + 1]) {
        flush(i);
        textStart = i + 1; // the escaped character is kept as text, the backslash dropped
        i += 2;
        continue;
      }
      if (c === 96) {
        const span = this.code.get(i);
        if (span && span.end <= end) {
          flush(i);
          const code = document.createElement("code");
          code.textContent = codeSpanText(t.slice(span.from, span.to));
          push({ node: code });
          i = textStart = span.end;
          continue;
        }
        while (i < end && t.charCodeAt(i) === 96) i++;
        continue;
      }
      if (c === 10) {
        flush(i);
        push({ node: document.createElement("br") });
        i = textStart = i + 1;
        continue;
      }
      if (plain) {
        i++;
        continue;
      }
      if (c === 42 || c === 95 || c === 126) {
        flush(i);
        const ch = t[i];
        let j = i;
        while (j < end && t[j] === ch) j++;
        const before = i > 0 ? t[i - 1] : " ";
        const after = j < t.length ? t[j] : " ";
        const spaceBefore = WHITESPACE.test(before);
        const spaceAfter = WHITESPACE.test(after);
        const punctBefore = PUNCTUATION.test(before);
        const punctAfter = PUNCTUATION.test(after);
        const left = !spaceAfter && (!punctAfter || spaceBefore || punctBefore);
        const right = !spaceBefore && (!punctBefore || spaceAfter || punctAfter);
        let open = left;
        let close = right;
        if (ch === "_") {
          open = left && (!right || punctBefore);
          close = right && (!left || punctAfter);
        }
        if (ch === "~" && j - i !== 2) open = close = false; // ~~strike~~ only
        const item = push({ text: t.slice(i, j), ch, count: j - i, orig: j - i, open, close });
        if (open || close) delimiters.push(item);
        i = textStart = j;
        continue;
      }
      let made = null;
      if (!inLink && (c === 91 || (c === 33 && t.charCodeAt(i + 1) === 91))) {
        made = this.link(i, end, depth);
      } else if (!inLink && c === 60) {
        made = this.autolink(i, end);
      } else if (!inLink && (c === 104 || c === 72) && (i === 0 || !ALNUM.test(t[i - 1]))) {
        made = this.bareUrl(i, end);
      }
      if (made) {
        flush(i);
        push({ node: made.node });
        i = textStart = made.next;
        continue;
      }
      i++;
    }
    flush(end);

    // Pass 2: emphasis, closer by closer.
    const bottom = new Map();
    const alive = new Set(delimiters);
    for (let k = 0; k < delimiters.length; k++) {
      const closer = delimiters[k];
      if (!closer.close || !alive.has(closer)) continue;
      while (closer.count > 0) {
        const key = `${closer.ch}${closer.open ? 1 : 0}${closer.orig % 3}`;
        const floor = bottom.get(key) ?? -1;
        let o = k - 1;
        let opener = null;
        for (; o > floor; o--) {
          const d = delimiters[o];
          if (!alive.has(d) || !d.open || d.ch !== closer.ch || d.count === 0) continue;
          const oddMatch =
            (d.close || closer.open) && (d.orig + closer.orig) % 3 === 0 && (d.orig % 3 !== 0 || closer.orig % 3 !== 0);
          if (oddMatch) continue;
          opener = d;
          break;
        }
        if (!opener) {
          bottom.set(key, k - 1);
          if (!closer.open) alive.delete(closer);
          break;
        }
        const use = closer.ch === "~" ? 2 : closer.count >= 2 && opener.count >= 2 ? 2 : 1;
        // Wrap the items between opener and closer.
        let level = 0;
        const children = [];
        for (let item = opener.next; item !== closer; item = item.next) {
          children.push(item);
          if (item.level) level = Math.max(level, item.level);
        }
        if (level >= MAX_EMPHASIS_DEPTH) {
          alive.delete(opener);
          continue;
        }
        const tag = closer.ch === "~" ? "del" : use === 2 ? "strong" : "em";
        const wrapped = { tag, children, level: level + 1 };
        wrapped.prev = opener;
        wrapped.next = closer;
        opener.next = wrapped;
        closer.prev = wrapped;
        for (let d = o + 1; d < k; d++) alive.delete(delimiters[d]);
        opener.count -= use;
        closer.count -= use;
        opener.text = opener.text.slice(0, opener.count);
        closer.text = closer.text.slice(0, closer.count);
        if (opener.count === 0) alive.delete(opener);
      }
    }

    // Pass 3: the DOM.
    for (let item = head.next; item; item = item.next) appendItem(parent, item);
  }

  link(i, end, depth) {
    const t = this.t;
    const image = t.charCodeAt(i) === 33;
    const open = image ? i + 1 : i;
    const close = this.bracket.get(open);
    if (close === undefined || close + 1 >= end || t.charCodeAt(close + 1) !== 40) return null;
    if (this.budget <= 0) return null;
    // The destination: <...> or up to whitespace / an unbalanced ")".
    let j = close + 2;
    const limit = Math.min(end, j + MAX_URL + 256, j + this.budget);
    const from = j;
    const spend = () => {
      this.budget -= Math.max(0, j - from);
    };
    while (j < limit && (t[j] === " " || t[j] === "\t")) j++;
    let dest = "";
    if (t[j] === "<") {
      const gt = this.find(62, j + 1, limit);
      if (gt < 0) {
        j = limit;
        spend();
        return null;
      }
      dest = t.slice(j + 1, gt);
      j = gt + 1;
      if (dest.includes("\n")) {
        spend();
        return null;
      }
    } else {
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
      dest = t.slice(start, j).replace(/\\([!-/:-@[-`{-~])/g, "$1");
    }
    while (j < limit && WHITESPACE.test(t[j])) j++;
    let title = "";
    const quote = t[j];
    if (quote === '"' || quote === "'" || quote === "(") {
      const q = this.find(quote === "(" ? 41 : quote.charCodeAt(0), j + 1, limit);
      if (q < 0) {
        j = limit;
        spend();
        return null;
      }
      title = t.slice(j + 1, q);
      j = q + 1;
      while (j < limit && WHITESPACE.test(t[j])) j++;
    }
    spend();
    if (t[j] !== ")") return null;
    const href = safeUrl(dest);
    let node;
    if (href) {
      node = document.createElement("a");
      node.href = href;
      node.rel = "noopener noreferrer";
      node.target = "_blank";
      if (title) node.title = title;
    } else {
      node = document.createElement("span"); // not a link: the text, and where it pointed
      node.className = "not-a-link";
      node.title = `Not a link: ${dest}`.slice(0, 300);
    }
    if (image) {
      const label = t.slice(open + 1, close).trim();
      node.textContent = label ? `[image: ${label}]` : "[image]";
    } else if (close > open + 1) {
      this.render(open + 1, close, node, depth + 1, true);
    } else {
      node.textContent = dest;
    }
    return { node, next: j + 1 };
  }

  /** The first position of the character `code` in [from, limit), or -1. */
  find(code, from, limit) {
    for (let k = from; k < limit; k++) if (this.t.charCodeAt(k) === code) return k;
    return -1;
  }

  autolink(i, end) {
    const t = this.t;
    for (const [pattern, prefix] of [
      [AUTOLINK, ""],
      [AUTOMAIL, "mailto:"],
    ]) {
      pattern.lastIndex = i;
      const m = pattern.exec(t);
      if (!m || pattern.lastIndex > end) continue;
      const href = safeUrl(prefix + m[1]);
      if (!href) return null; // <javascript:...> stays text
      return { node: makeLink(href, m[1]), next: pattern.lastIndex };
    }
    return null;
  }

  bareUrl(i, end) {
    const t = this.t;
    BARE_URL.lastIndex = i;
    const m = BARE_URL.exec(t);
    if (!m) return null;
    let url = m[0].slice(0, Math.min(MAX_URL, end - i));
    for (;;) {
      const last = url.at(-1);
      if (TRAILING_PUNCT.includes(last)) url = url.slice(0, -1);
      else if (last === ")" && count(url, "(") < count(url, ")")) url = url.slice(0, -1);
      else break;
    }
    const href = safeUrl(url);
    if (!href || url.length <= 8) return null;
    return { node: makeLink(href, url), next: i + url.length };
  }
}

function appendItem(parent, item) {
  if (item.node) {
    parent.append(item.node);
  } else if (item.tag) {
    const el = document.createElement(item.tag);
    for (const child of item.children) appendItem(el, child);
    parent.append(el);
  } else if (item.text) {
    appendText(parent, item.text);
  }
}

function count(text, ch) {
  let n = 0;
  for (const c of text) if (c === ch) n++;
  return n;
}

function codeSpanText(raw) {
  const text = raw.replace(/\n/g, " ");
  if (text.length > 2 && text.startsWith(" ") && text.endsWith(" ") && text.trim() !== "") {
    return text.slice(1, -1);
  }
  return text;
}

function appendText(parent, text) {
  const last = parent.lastChild;
  if (last && last.nodeType === Node.TEXT_NODE) last.appendData(text);
  else parent.append(document.createTextNode(text));
}

function makeLink(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  a.textContent = text;
  return a;
}

/** Appends the inline Markdown of `text` to `parent`. */
export function renderInline(text, parent) {
  new Inline(text).render(0, text.length, parent, 0);
}

// Rendering blocks ------------------------------------------------------------------

function renderCode(block) {
  const wrap = document.createElement("div");
  wrap.className = "code-block";
  const head = document.createElement("div");
  head.className = "code-head";
  const lang = document.createElement("span");
  lang.className = "code-lang";
  lang.textContent = block.lang || "code";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", "Copy code");
  head.append(lang, copy);
  const pre = document.createElement("pre");
  const code = document.createElement("code");
  const text = document.createTextNode(block.code);
  code.append(text);
  pre.append(code);
  pre.tabIndex = 0; // a wide block scrolls with the keyboard too
  wrap.append(head, pre);
  return { node: wrap, text };
}

function renderBlock(block, tight = false) {
  switch (block.type) {
    case "paragraph": {
      const p = document.createElement(tight ? "span" : "p");
      renderInline(block.text, p);
      return p;
    }
    case "heading": {
      const h = document.createElement(`h${Math.min(6, block.level + 2)}`);
      h.className = `md-h${block.level}`;
      renderInline(block.text, h);
      return h;
    }
    case "hr":
      return document.createElement("hr");
    case "code":
      return renderCode(block).node;
    case "quote": {
      const q = document.createElement("blockquote");
      for (const child of block.children) q.append(renderBlock(child));
      return q;
    }
    case "list": {
      const list = document.createElement(block.ordered ? "ol" : "ul");
      if (block.ordered && block.start !== 1) list.start = block.start;
      for (const item of block.items) {
        const li = document.createElement("li");
        for (const child of item.blocks) li.append(renderBlock(child, block.tight));
        list.append(li);
      }
      return list;
    }
    case "table": {
      const wrap = document.createElement("div");
      wrap.className = "table-wrap";
      const table = document.createElement("table");
      const thead = document.createElement("thead");
      const headRow = document.createElement("tr");
      block.head.forEach((cell, k) => headRow.append(tableCell("th", cell, block.align[k])));
      thead.append(headRow);
      const tbody = document.createElement("tbody");
      for (const row of block.rows) {
        const tr = document.createElement("tr");
        for (let k = 0; k < block.head.length; k++) {
          tr.append(tableCell("td", row[k] ?? "", block.align[k]));
        }
        tbody.append(tr);
      }
      table.append(thead, tbody);
      wrap.append(table);
      return wrap;
    }
    default:
      return document.createTextNode("");
  }
}

function tableCell(tag, text, align) {
  const cell = document.createElement(tag);
  if (align) cell.className = `align-${align}`;
  renderInline(text, cell);
  return cell;
}

/** Renders Markdown into a fresh fragment (for messages that are complete). */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  for (const block of parseBlocks(text.split(/\r?\n/))) fragment.append(renderBlock(block));
  return fragment;
}

/**
 * Markdown in `root`, re-rendered as its source grows: blocks whose source is
 * unchanged keep their nodes, a growing code block is extended in place.
 */
export class MarkdownView {
  constructor(root) {
    this.root = root;
    this.items = []; // {key, block, node, text?}
  }

  update(source) {
    const blocks = parseBlocks(source.split(/\r?\n/));
    const items = this.items;
    let k = 0;
    for (; k < blocks.length; k++) {
      const block = blocks[k];
      const prev = items[k];
      if (prev && prev.key === block.key) continue;
      if (
        prev &&
        prev.text &&
        block.type === "code" &&
        prev.block.lang === block.lang &&
        block.code.startsWith(prev.block.code)
      ) {
        prev.text.appendData(block.code.slice(prev.block.code.length));
        prev.key = block.key;
        prev.block = block;
        continue;
      }
      let node;
      let text = null;
      if (block.type === "code") ({ node, text } = renderCode(block));
      else node = renderBlock(block);
      if (prev) prev.node.replaceWith(node);
      else this.root.append(node);
      items[k] = { key: block.key, block, node, text };
    }
    for (let r = k; r < items.length; r++) items[r].node.remove();
    items.length = blocks.length;
  }
}
