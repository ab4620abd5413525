// The golden cases of tests/browser/test_markdown.py (there: the page's DOM, as
// innerHTML, in chromium), here on the parser's tree as HTML (toHtml), in node.
// Keep the two lists equal: test_the_parsers_html_is_the_browsers in the browser
// test holds toHtml to what the browser writes.

import assert from "node:assert/strict";
import { test } from "node:test";

import { markdownTree, toHtml } from "../../src/codelinkava/server/static/markdown-parse.js";

/** [source, html], as in tests/browser/test_markdown.py CASES. */
const CASES = [
  [
    "Hello *world* and **bold** and ***both***",
    "<p>Hello <em>world</em> and <strong>bold</strong> and <em><strong>both</strong></em></p>",
  ],
  [
    "*a **b***",
    "<p><em>a <strong>b</strong></em></p>",
  ],
  [
    "snake_case_name and __init__ and _under_",
    "<p>snake_case_name and <strong>init</strong> and <em>under</em></p>",
  ],
  [
    "2 * 3 * 4 and ~~gone~~ and ~one~",
    "<p>2 * 3 * 4 and <del>gone</del> and ~one~</p>",
  ],
  [
    "\\*not\\* \\<b\\>",
    "<p>*not* &lt;b&gt;</p>",
  ],
  [
    "`a *b* <c>` and ``x ` y``",
    "<p><code>a *b* &lt;c&gt;</code> and <code>x ` y</code></p>",
  ],
  [
    "line one\nline two",
    "<p>line one<br>line two</p>",
  ],
  [
    "# One\n## Two ##\n###### Six",
    "<h3 class=\"md-h1\">One</h3><h4 class=\"md-h2\">Two</h4><h6 class=\"md-h6\">Six</h6>",
  ],
  [
    "para\n\n---\n\nmore",
    "<p>para</p><hr><p>more</p>",
  ],
  [
    "> quoted **bold**\n> next\n\nafter",
    "<blockquote><p>quoted <strong>bold</strong><br>next</p></blockquote><p>after</p>",
  ],
  [
    "- a\n- b\n  - c\n  - d\n- e",
    "<ul><li><span>a</span></li><li><span>b</span><ul><li><span>c</span></li><li><span>d</span></li></ul></li><li><span>e</span></li></ul>",
  ],
  [
    "3. c\n4. d",
    "<ol start=\"3\"><li><span>c</span></li><li><span>d</span></li></ol>",
  ],
  [
    "1. a\n\n2. b",
    "<ol><li><p>a</p></li><li><p>b</p></li></ol>",
  ],
  [
    "Steps:\n1. first\n2. second",
    "<p>Steps:</p><ol><li><span>first</span></li><li><span>second</span></li></ol>",
  ],
  [
    "```js\nlet a = '<b>';\n\n  indented\n```\nafter",
    "<div class=\"code-block\"><div class=\"code-head\"><span class=\"code-lang\">js</span><button type=\"button\" class=\"copy\" aria-label=\"Copy code\">Copy</button></div><pre tabindex=\"0\"><code>let a = '&lt;b&gt;';\n\n  indented</code></pre></div><p>after</p>",
  ],
  [
    "~~~\nno lang\n~~~",
    "<div class=\"code-block\"><div class=\"code-head\"><span class=\"code-lang\">code</span><button type=\"button\" class=\"copy\" aria-label=\"Copy code\">Copy</button></div><pre tabindex=\"0\"><code>no lang</code></pre></div>",
  ],
  [
    "| a | b | c |\n|:--|:-:|--:|\n| 1 | **2** | 3 \\| 4 |\n| 5 |",
    "<div class=\"table-wrap\"><table><thead><tr><th class=\"align-left\">a</th><th class=\"align-center\">b</th><th class=\"align-right\">c</th></tr></thead><tbody><tr><td class=\"align-left\">1</td><td class=\"align-center\"><strong>2</strong></td><td class=\"align-right\">3 | 4</td></tr><tr><td class=\"align-left\">5</td><td class=\"align-center\"></td><td class=\"align-right\"></td></tr></tbody></table></div>",
  ],
  [
    "[site](https://example.com/a?b=1&c=2 \"Title\") <https://x.org> <me@x.org> www https://y.org/p).",
    "<p><a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer\" target=\"_blank\" title=\"Title\">site</a> <a href=\"https://x.org/\" rel=\"noopener noreferrer\" target=\"_blank\">https://x.org</a> <a href=\"mailto:me@x.org\" rel=\"noopener noreferrer\" target=\"_blank\">me@x.org</a> www <a href=\"https://y.org/p\" rel=\"noopener noreferrer\" target=\"_blank\">https://y.org/p</a>).</p>",
  ],
  [
    "[a](javascript:alert(1)) [b](vbscript:x) [c](/relative) [d](file:///etc/passwd) <javascript:alert(1)>",
    "<p><span class=\"not-a-link\" title=\"Not a link: javascript:alert(1)\">a</span> <span class=\"not-a-link\" title=\"Not a link: vbscript:x\">b</span> <span class=\"not-a-link\" title=\"Not a link: /relative\">c</span> <span class=\"not-a-link\" title=\"Not a link: file:///etc/passwd\">d</span> &lt;javascript:alert(1)&gt;</p>",
  ],
  [
    "<b onclick=\"x()\">hi</b> <img src=x onerror=alert(1)>",
    "<p>&lt;b onclick=\"x()\"&gt;hi&lt;/b&gt; &lt;img src=x onerror=alert(1)&gt;</p>",
  ],
  [
    "![alt text](https://x.org/i.png)",
    "<p><a href=\"https://x.org/i.png\" rel=\"noopener noreferrer\" target=\"_blank\">[image: alt text]</a></p>",
  ],
];

for (const [source, html] of CASES) {
  test(`golden: ${source.slice(0, 30)}`, () => {
    assert.equal(toHtml(markdownTree(source)), html);
  });
}
