// The DOM builder (markdown.js) on a fake document in node: what it builds is the
// parser's tree, made with createElement and text nodes only; anything off the
// allow-list is refused; the streaming view ends as the whole render and extends
// a growing code block in place. And the parser never touches the DOM.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { calls, container } from "./fake-dom.mjs";

const STATIC = new URL("../../src/codelinkava/server/static/", import.meta.url);
const { MarkdownView, buildNode, renderMarkdown } = await import(new URL("markdown.js", STATIC).href);
const { markdownTree, toHtml } = await import(new URL("markdown-parse.js", STATIC).href);

function render(source) {
  const div = container();
  div.append(renderMarkdown(source));
  return div.innerHTML;
}

const DOCUMENT = `# Notes

Some *text* with \`code\` and a [link](https://example.com).

- one
- two **bold**
  1. nested
  2. more

\`\`\`python
def f(x):
    return x * 2
\`\`\`

| a | b |
|---|---|
| 1 | 2 |

> quote
> and *more*

<script>alert(1)</script> [x](javascript:alert(1))

The end: https://example.org/done.
`;

test("dom: the DOM is the parser's tree", () => {
  assert.equal(render(DOCUMENT), toHtml(markdownTree(DOCUMENT)));
});

test("dom: only createElement, text nodes and a fragment", () => {
  calls.length = 0;
  render(DOCUMENT);
  const used = new Set(calls.map(([method]) => method));
  assert.deepEqual([...used].sort(), ["createDocumentFragment", "createElement", "createTextNode"]);
  assert.ok(!calls.some(([method, tag]) => method === "createElement" && tag === "script"));
});

test("dom: elements, attributes and links off the allow-list are refused", () => {
  assert.throws(() => buildNode({ tag: "script", attrs: {}, children: [] }), /not allowed/);
  assert.throws(() => buildNode({ tag: "img", attrs: { src: "x" }, children: [] }), /not allowed/);
  assert.throws(() => buildNode({ tag: "a", attrs: { onclick: "x()" }, children: [] }), /not allowed/);
  assert.throws(() => buildNode({ tag: "a", attrs: { href: "javascript:alert(1)" }, children: [] }), /not a safe link/);
  assert.throws(() => buildNode({ tag: "constructor", attrs: {}, children: [] }), /not allowed/);
  const a = buildNode({ tag: "a", attrs: { href: "https://x.org/" }, children: [{ text: "<b>" }] });
  assert.equal(a.outerHTML, '<a href="https://x.org/">&lt;b&gt;</a>');
});

test("dom: the streaming view ends as the whole render", () => {
  const whole = render(DOCUMENT);
  for (const step of [1, 3, 7, 40]) {
    const live = container();
    const view = new MarkdownView(live);
    for (let i = step; i < DOCUMENT.length + step; i += step) view.update(DOCUMENT.slice(0, i));
    assert.equal(live.innerHTML, whole, `step ${step}`);
  }
});

test("dom: a growing code block is extended in place", () => {
  const live = container();
  const view = new MarkdownView(live);
  view.update("```\nfirst");
  const code = live.querySelector("code");
  const text = code.firstChild;
  view.update("```\nfirst line\nsecond");
  assert.equal(live.querySelector("code"), code);
  assert.equal(code.firstChild, text);
  assert.equal(code.textContent, "first line\nsecond");
  view.update("```\nfirst line\nsecond\n```\n\nafter");
  assert.equal(live.querySelector("code"), code);
  assert.match(live.innerHTML, /<p>after<\/p>$/);
  view.update("gone");
  assert.equal(live.innerHTML, "<p>gone</p>");
});

test("dom: the parser never touches the DOM, the builder never parses HTML", () => {
  const strip = (src) => src.replace(/\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
  const parser = strip(readFileSync(new URL("markdown-parse.js", STATIC), "utf8"));
  for (const name of ["document", "window", "innerHTML", "outerHTML", "createElement", "DOMParser", "Node."]) {
    assert.ok(!parser.includes(name), `markdown-parse.js uses ${name}`);
  }
  const builder = strip(readFileSync(new URL("markdown.js", STATIC), "utf8"));
  for (const name of ["innerHTML", "outerHTML", "insertAdjacentHTML", "DOMParser", "createContextualFragment", "document.write"]) {
    assert.ok(!builder.includes(name), `markdown.js uses ${name}`);
  }
});
