// Just enough of a DOM for markdown.js in node: elements, text nodes, fragments,
// and innerHTML as a getter (serialised as a browser writes it). There is no
// innerHTML setter, nor any way here to parse HTML: a renderer that tried would throw.

const VOID = new Set(["br", "hr"]);

function escape(text, attribute) {
  let out = text.replace(/&/g, "&amp;").replace(/\u00a0/g, "&nbsp;");
  if (attribute) out = out.replace(/"/g, "&quot;");
  return out.replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

class FakeNode {
  constructor() {
    this.parentNode = null;
    this.childNodes = [];
  }

  get firstChild() {
    return this.childNodes[0] ?? null;
  }

  append(...nodes) {
    for (const node of nodes) {
      if (typeof node === "string") throw new TypeError("fake-dom: append text as a Text node");
      if (node instanceof FakeFragment) {
        for (const child of [...node.childNodes]) this.append(child);
        continue;
      }
      node.remove();
      node.parentNode = this;
      this.childNodes.push(node);
    }
  }

  appendChild(node) {
    this.append(node);
    return node;
  }

  remove() {
    if (!this.parentNode) return;
    const siblings = this.parentNode.childNodes;
    siblings.splice(siblings.indexOf(this), 1);
    this.parentNode = null;
  }

  replaceWith(node) {
    const siblings = this.parentNode.childNodes;
    node.remove();
    node.parentNode = this.parentNode;
    siblings[siblings.indexOf(this)] = node;
    this.parentNode = null;
  }

  get innerHTML() {
    return this.childNodes.map((child) => child.outerHTML).join("");
  }

  /** Only "TAG" and "PARENT > CHILD", which is all markdown.js asks. */
  querySelector(selector) {
    const [outer, inner] = selector.split(/\s*>\s*/);
    for (const child of this.childNodes) {
      if (!(child instanceof FakeElement)) continue;
      if (inner === undefined ? child.tagName === outer : child.tagName === outer && child.childNodes.some((c) => c.tagName === inner)) {
        return inner === undefined ? child : child.childNodes.find((c) => c.tagName === inner);
      }
      const found = child.querySelector(selector);
      if (found) return found;
    }
    return null;
  }
}

class FakeText extends FakeNode {
  constructor(data) {
    super();
    this.data = String(data);
  }

  appendData(text) {
    this.data += text;
  }

  get textContent() {
    return this.data;
  }

  get outerHTML() {
    return escape(this.data, false);
  }
}

class FakeElement extends FakeNode {
  constructor(tag) {
    super();
    this.tagName = tag;
    this.attributes = new Map();
  }

  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }

  get textContent() {
    return this.childNodes.map((child) => child.textContent).join("");
  }

  get outerHTML() {
    const attrs = [...this.attributes].map(([k, v]) => ` ${k}="${escape(v, true)}"`).join("");
    if (VOID.has(this.tagName)) return `<${this.tagName}${attrs}>`;
    return `<${this.tagName}${attrs}>${this.innerHTML}</${this.tagName}>`;
  }
}

class FakeFragment extends FakeNode {}

/** Every call made on `document`, as [method, argument]. */
export const calls = [];

export const document = {
  createElement(tag) {
    calls.push(["createElement", tag]);
    return new FakeElement(tag);
  },
  createTextNode(data) {
    calls.push(["createTextNode", data]);
    return new FakeText(data);
  },
  createDocumentFragment() {
    calls.push(["createDocumentFragment"]);
    return new FakeFragment();
  },
};

/** A fresh element to render into. */
export function container() {
  return new FakeElement("div");
}

globalThis.document = document;
