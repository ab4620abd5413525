// @ts-check
// The Markdown renderer of the page: markdown-parse.js turns the text into a tree
// of allow-listed elements and text, and this module turns the tree into DOM nodes.
//
// The model's output is untrusted. Nothing here parses HTML: every element is made
// with createElement, only if its tag and attributes are on the parser's allow-list,
// and every piece of the source lands in the page as text (text nodes), so raw HTML
// shows as the characters it is. Links are http:, https: and mailto: only, checked
// again here.
//
// MarkdownView re-renders only the blocks whose source changed -- a code block that
// grows while streaming is extended in place by appending to its text node.

import { ALLOWED, blockTree, inlineTree, parseMarkdown, safeUrl } from "./markdown-parse.js";

export { parseBlocks, safeUrl } from "./markdown-parse.js";

/** @typedef {import("./markdown-parse.js").MdNode} MdNode */
/** @typedef {import("./markdown-parse.js").Block} Block */

/**
 * The DOM node of a tree node: elements and attributes from ALLOWED only, text as text.
 * @param {MdNode} node
 * @returns {Node}
 */
export function buildNode(node) {
  if ("text" in node) return document.createTextNode(node.text);
  const allowed = ALLOWED.get(node.tag);
  if (!allowed) throw new TypeError(`markdown: <${node.tag}> is not allowed`);
  const element = document.createElement(node.tag);
  for (const [name, value] of Object.entries(node.attrs)) {
    if (!allowed.includes(name)) throw new TypeError(`markdown: ${name} is not allowed on <${node.tag}>`);
    if (name === "href" && safeUrl(value) !== value) throw new TypeError("markdown: not a safe link");
    element.setAttribute(name, value);
  }
  for (const child of node.children) element.append(buildNode(child));
  return element;
}

/**
 * Appends the inline Markdown of `text` to `parent`.
 * @param {string} text
 * @param {Node} parent
 */
export function renderInline(text, parent) {
  for (const node of inlineTree(text)) parent.appendChild(buildNode(node));
}

/**
 * Renders Markdown into a fresh fragment (for messages that are complete).
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  for (const block of parseMarkdown(text)) fragment.append(buildNode(blockTree(block)));
  return fragment;
}

/**
 * Markdown in `root`, re-rendered as its source grows: blocks whose source is
 * unchanged keep their nodes, a growing code block is extended in place.
 */
export class MarkdownView {
  /** @param {Element} root */
  constructor(root) {
    this.root = root;
    /** @type {{key: string, block: Block, node: ChildNode, text: Text | null}[]} */
    this.items = [];
  }

  /**
   * Shows `source`, the whole text so far.
   * @param {string} source
   */
  update(source) {
    const blocks = parseMarkdown(source);
    const items = this.items;
    for (let k = 0; k < blocks.length; k++) {
      const block = blocks[k];
      const prev = items[k];
      if (prev && (prev.key === block.key || extendCode(prev, block))) continue;
      const node = /** @type {Element} */ (buildNode(blockTree(block)));
      // The code's one text node, to extend in place (markdown-parse.js: always there).
      const text = block.type === "code" ? /** @type {Text} */ (node.querySelector("pre > code")?.firstChild) : null;
      if (prev) prev.node.replaceWith(node);
      else this.root.append(node);
      items[k] = { key: block.key, block, node, text };
    }
    for (let r = blocks.length; r < items.length; r++) items[r].node.remove();
    items.length = blocks.length;
  }
}

/**
 * Extends a shown code block whose code `block` continues; false when it does not.
 * @param {MarkdownView["items"][number]} prev
 * @param {Block} block
 */
function extendCode(prev, block) {
  if (!prev.text || block.type !== "code" || prev.block.type !== "code") return false;
  if (prev.block.lang !== block.lang || !block.code.startsWith(prev.block.code)) return false;
  prev.text.appendData(block.code.slice(prev.block.code.length));
  prev.key = block.key;
  prev.block = block;
  return true;
}
