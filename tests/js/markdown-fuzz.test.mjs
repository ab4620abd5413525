// A property test of the parser: thousands of random inputs built from Markdown-ish
// tokens, hostile HTML and hostile URLs (a seeded PRNG: the same inputs every run),
// and for each, nothing in the tree or its HTML outside the allow-list.
//
// A failure prints the seed and the input; FUZZ_SEED=n FUZZ_RUNS=m run others.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ALLOWED, markdownTree, safeUrl, toHtml } from "../../src/codelinkava/server/static/markdown-parse.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20251215);
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const URLS = [
  "https://example.com/a?b=1&c=2",
  "http://x.org/p_(q)",
  "mailto:me@example.com",
  "javascript:alert(1)",
  "JaVaScRiPt:alert(document.cookie)",
  " javascript:alert(1)",
  "java\tscript:alert(1)",
  "&#106;avascript:alert(1)",
  "javascript&colon;alert(1)",
  "\\javascript:alert(1)",
  "vbscript:msgbox(1)",
  "data:text/html,<script>alert(1)</script>",
  "file:///etc/passwd",
  "/relative",
  "//evil.example/x",
  "https://x.org/\"onmouseover=\"alert(1)",
  "https://x.org/<script>",
  "https://x.org/'><img src=x onerror=alert(1)>",
  "",
];

const TOKENS = [
  "*", "**", "***", "_", "__", "~", "~~", "`", "``", "```", "~~~", "\\", "\\*", "\\<", "\\`",
  "\n", "\n\n", "\r\n", " ", "  ", "    ", "\t", "# ", "### ", "####### ", "> ", ">", "- ", "* ", "+ ",
  "1. ", "7) ", "---", "***\n", "|", "| a | b |\n|---|:-:|\n", "[", "]", "(", ")", "![", "<", ">",
  "\"", "'", "&", "&amp;", "&lt;", "\u00a0", "é", "😀", "\u0000", "word", "snake_case", "a", "b c",
  "<script>alert(1)</script>", "<script", "</script>", "<img src=x onerror=alert(1)>",
  "<a href=\"javascript:alert(1)\">x</a>", "<b onclick=\"x()\">", "<iframe src=//x>", "<style>",
  "<!-- c -->", "<svg onload=alert(1)>", "onerror=alert(1)", "\" onclick=\"alert(1)", "' onclick='x'",
  "javascript:alert(1)", "https://example.com/p?q=1", "www.example.com", "me@example.com",
];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

/** A link, image or autolink around a random URL, with a random title. */
function linkish(rand) {
  const url = pick(rand, URLS);
  const title = rand() < 0.3 ? ` ${pick(rand, ['"t"', "'<x>'", '"a\\"b"', "(p)"])}` : "";
  switch (Math.floor(rand() * 4)) {
    case 0:
      return `[${pick(rand, TOKENS)}](${url}${title})`;
    case 1:
      return `![${pick(rand, TOKENS)}](<${url}>${title})`;
    case 2:
      return `<${url}>`;
    default:
      return url;
  }
}

function randomInput(rand) {
  const parts = [];
  const n = 1 + Math.floor(rand() * 60);
  for (let k = 0; k < n; k++) parts.push(rand() < 0.2 ? linkish(rand) : pick(rand, TOKENS));
  return parts.join("");
}

const CLASSES = new Set([
  "code-block", "code-head", "code-lang", "copy", "table-wrap", "not-a-link",
  "md-h1", "md-h2", "md-h3", "md-h4", "md-h5", "md-h6", "align-left", "align-center", "align-right",
]);

/** What each attribute may hold. */
const VALUES = {
  class: (v) => CLASSES.has(v),
  href: (v) => safeUrl(v) === v && /^(https?:\/\/|mailto:)/.test(v) && !/[\s"<>]/.test(v),
  rel: (v) => v === "noopener noreferrer",
  target: (v) => v === "_blank",
  type: (v) => v === "button",
  tabindex: (v) => v === "0",
  start: (v) => /^\d{1,9}$/.test(v),
  "aria-label": (v) => v === "Copy code",
  title: (v) => typeof v === "string" && v.length <= 2400,
};

/** Every node of the tree is allow-listed; returns the tree's depth. */
function check(node, inLink) {
  if ("text" in node) {
    assert.deepEqual(Object.keys(node), ["text"]);
    assert.equal(typeof node.text, "string");
    return 0;
  }
  assert.deepEqual(Object.keys(node).sort(), ["attrs", "children", "tag"]);
  const allowed = ALLOWED.get(node.tag);
  assert.ok(allowed, `<${node.tag}> is not allowed`);
  assert.equal(Object.getPrototypeOf(node.attrs), Object.prototype);
  for (const [name, value] of Object.entries(node.attrs)) {
    assert.ok(allowed.includes(name), `${name} on <${node.tag}>`);
    assert.equal(typeof value, "string");
    assert.ok(VALUES[name](value), `${name}=${JSON.stringify(value)} on <${node.tag}>`);
  }
  if (node.tag === "a") {
    assert.ok(!inLink, "a link inside a link");
    assert.ok("href" in node.attrs && node.attrs.rel && node.attrs.target, "a link without href, rel or target");
  }
  if (node.tag === "br" || node.tag === "hr") assert.equal(node.children.length, 0);
  let depth = 0;
  for (const child of node.children) depth = Math.max(depth, check(child, inLink || node.tag === "a"));
  return depth + 1;
}

/** Every tag in the HTML is an allowed one, with allowed attributes: no raw HTML got through. */
function checkHtml(html) {
  for (const m of html.matchAll(/<(\/?)([^\s>/]*)([^>]*)>/g)) {
    const [, , tag, rest] = m;
    const allowed = ALLOWED.get(tag);
    assert.ok(allowed, `<${tag}> in the HTML`);
    for (const [, name, value] of rest.matchAll(/ ([^\s=]+)="([^"]*)"/g)) {
      assert.ok(allowed.includes(name), `${name} on <${tag}>`);
      if (name === "href") assert.match(value, /^(https?:\/\/|mailto:)/, "a link that is not http(s) or mailto");
    }
    assert.equal(rest.replace(/ ([^\s=]+)="([^"]*)"/g, ""), "", `stray text in <${tag}${rest}>`);
  }
  assert.ok(!/<script/i.test(html), "a <script> tag in the HTML");
}

test(`fuzz: ${RUNS} random inputs stay inside the allow-list (seed ${SEED})`, () => {
  const rand = prng(SEED);
  let links = 0;
  let notLinks = 0;
  for (let run = 0; run < RUNS; run++) {
    const source = randomInput(rand);
    try {
      const tree = markdownTree(source);
      for (const node of tree) assert.ok(check(node, false) < 64, "the tree is too deep");
      const html = toHtml(tree);
      checkHtml(html);
      assert.deepEqual(markdownTree(source), tree, "the same input, a different tree");
      links += (html.match(/<a /g) ?? []).length;
      notLinks += (html.match(/not-a-link/g) ?? []).length;
    } catch (error) {
      error.message = `seed ${SEED}, run ${run}, input ${JSON.stringify(source)}: ${error.message}`;
      throw error;
    }
  }
  // The inputs do reach the link code, both ways.
  assert.ok(links > RUNS / 10 && notLinks > RUNS / 10, `${links} links, ${notLinks} refused`);
});

test("fuzz: long random inputs parse in linear time", () => {
  const rand = prng(SEED + 1);
  for (let run = 0; run < 20; run++) {
    const parts = [];
    for (let k = 0; k < 4000; k++) parts.push(rand() < 0.1 ? linkish(rand) : pick(rand, TOKENS));
    const source = parts.join("");
    const start = performance.now();
    const tree = markdownTree(source);
    const took = performance.now() - start;
    for (const node of tree) check(node, false);
    assert.ok(took < 1000, `${source.length} characters took ${took.toFixed(0)} ms`);
  }
});
