// The CommonMark subset the page's renderer supports, checked on the parser's tree
// (as HTML: toHtml) in node, without a browser.
//
// Where the page departs from CommonMark on purpose, the expectation says so:
// headings are h3..h6 (the page has its own h1/h2) with class md-hN, a tight
// list item's paragraph is a <span>, a soft line break is a <br>, raw HTML is
// text, and links are http(s)/mailto only, opening in a new tab.

import assert from "node:assert/strict";
import { test } from "node:test";

import { inlineTree, markdownTree, toHtml } from "../../src/codelinkava/server/static/markdown-parse.js";

const md = (source) => toHtml(markdownTree(source));
const inline = (source) => toHtml(inlineTree(source));
const A = 'rel="noopener noreferrer" target="_blank"';

/** [name, source, html] */
const CASES = [
  // Paragraphs
  ["paragraph", "aaa\n\nbbb", "<p>aaa</p><p>bbb</p>"],
  ["paragraph: leading spaces dropped", "  aaa\n bbb", "<p>aaa<br>bbb</p>"],
  ["paragraph: blank lines between", "aaa\n\n\n\nbbb", "<p>aaa</p><p>bbb</p>"],
  ["paragraph: CRLF", "a\r\nb\r\n\r\nc", "<p>a<br>b</p><p>c</p>"],
  // ATX headings
  ["headings 1-6", "# a\n## b\n### c\n#### d\n##### e\n###### f",
    '<h3 class="md-h1">a</h3><h4 class="md-h2">b</h4><h5 class="md-h3">c</h5>' +
    '<h6 class="md-h4">d</h6><h6 class="md-h5">e</h6><h6 class="md-h6">f</h6>'],
  ["seven #s is a paragraph", "####### foo", "<p>####### foo</p>"],
  ["no space after # is a paragraph", "#5 bolt\n\n#hashtag", "<p>#5 bolt</p><p>#hashtag</p>"],
  ["heading: closing sequence", "## foo ##\n# foo ##################", '<h4 class="md-h2">foo</h4><h3 class="md-h1">foo</h3>'],
  ["heading: closing # needs a space", "# foo#", '<h3 class="md-h1">foo#</h3>'],
  ["heading: inline content", "# foo *bar* \\*baz\\*", '<h3 class="md-h1">foo <em>bar</em> *baz*</h3>'],
  ["heading: empty", "#\n# #", '<h3 class="md-h1"></h3><h3 class="md-h1"></h3>'],
  ["heading: up to 3 spaces", "   # foo", '<h3 class="md-h1">foo</h3>'],
  ["heading interrupts a paragraph", "Foo bar\n# baz\nBar foo", '<p>Foo bar</p><h3 class="md-h1">baz</h3><p>Bar foo</p>'],
  // Thematic breaks
  ["thematic breaks", "***\n---\n___", "<hr><hr><hr>"],
  ["thematic break with spaces", " - - -\n**  * ** * ** * **", "<hr><hr>"],
  ["two dashes are text", "--\n**", "<p>--<br>**</p>"],
  ["thematic break between paragraphs", "Foo\n***\nbar", "<p>Foo</p><hr><p>bar</p>"],
  // Emphasis
  ["em and strong", "*foo* _bar_ **baz** __qux__", "<p><em>foo</em> <em>bar</em> <strong>baz</strong> <strong>qux</strong></p>"],
  ["not emphasis after space", "a * foo bar*", "<p>a * foo bar*</p>"],
  ["intraword *", "foo*bar*", "<p>foo<em>bar</em></p>"],
  ["no intraword _", "foo_bar_", "<p>foo_bar_</p>"],
  ["nested", "*foo **bar** baz*", "<p><em>foo <strong>bar</strong> baz</em></p>"],
  ["***strong em***", "***foo***", "<p><em><strong>foo</strong></em></p>"],
  ["rule of 3", "*foo**bar**baz*", "<p><em>foo<strong>bar</strong>baz</em></p>"],
  ["unmatched opener", "**foo*", "<p>*<em>foo</em></p>"],
  ["unmatched closer", "*foo**", "<p><em>foo</em>*</p>"],
  ["punctuation flanking", "*(*foo*)*", "<p><em>(<em>foo</em>)</em></p>"],
  ["strikethrough", "~~a~~ ~b~ ~~~c~~~", "<p><del>a</del> ~b~ ~~~c~~~</p>"],
  // Code spans
  ["code span", "`foo`", "<p><code>foo</code></p>"],
  ["code span with backticks", "`` foo ` bar ``", "<p><code>foo ` bar</code></p>"],
  ["code span strips one space", "` `` `", "<p><code>``</code></p>"],
  ["code span keeps lone spaces", "`  `", "<p><code>  </code></p>"],
  ["code span: line ending is a space", "`foo\nbar`", "<p><code>foo bar</code></p>"],
  ["code span: backslash is literal", "`foo\\`bar`", "<p><code>foo\\</code>bar`</p>"],
  ["code span beats emphasis", "*foo`*`", "<p>*foo<code>*</code></p>"],
  ["unmatched backticks", "```foo``", "<p>```foo``</p>"],
  ["code span: HTML is text", "`<a href=\"x\">`", "<p><code>&lt;a href=\"x\"&gt;</code></p>"],
  // Fenced code blocks
  ["fence", "```\n<\n >\n```", codeBlock("code", "&lt;\n &gt;")],
  ["tilde fence", "~~~\n<\n >\n~~~", codeBlock("code", "&lt;\n &gt;")],
  ["fence: info string", "```ruby startline=3\ndef foo(x)\n```", codeBlock("ruby", "def foo(x)")],
  ["fence: longer closing", "````\naaa\n```\n``````", codeBlock("code", "aaa\n```")],
  ["fence: other char does not close", "```\naaa\n~~~\n```", codeBlock("code", "aaa\n~~~")],
  ["fence: unclosed runs to the end", "```\n\n```js\nx", codeBlock("code", "\n```js\nx")],
  ["fence: indented, indentation removed", "  ```\n  aaa\n    bbb\naaa\n  ```", codeBlock("code", "aaa\n  bbb\naaa")],
  ["fence: no Markdown inside", "```\n*a* [b](https://x.org)\n```", codeBlock("code", "*a* [b](https://x.org)")],
  ["fence interrupts a paragraph", "foo\n```\nbar\n```\nbaz", `<p>foo</p>${codeBlock("code", "bar")}<p>baz</p>`],
  ["fence: empty", "```\n```", codeBlock("code", "")],
  // Block quotes
  ["block quote", "> # Foo\n> bar\n> baz", '<blockquote><h3 class="md-h1">Foo</h3><p>bar<br>baz</p></blockquote>'],
  ["block quote: no space after >", "># Foo\n>bar", '<blockquote><h3 class="md-h1">Foo</h3><p>bar</p></blockquote>'],
  ["block quote: lazy continuation", "> bar\nbaz\n> foo", "<blockquote><p>bar<br>baz<br>foo</p></blockquote>"],
  ["block quote: ended by a blank line", "> foo\n\n> bar", "<blockquote><p>foo</p></blockquote><blockquote><p>bar</p></blockquote>"],
  ["block quote: nested", "> > > foo\nbar", "<blockquote><blockquote><blockquote><p>foo<br>bar</p></blockquote></blockquote></blockquote>"],
  ["block quote: thematic break ends it", "> foo\n---", "<blockquote><p>foo</p></blockquote><hr>"],
  // Lists
  ["bullet list, tight", "- one\n- two", "<ul><li><span>one</span></li><li><span>two</span></li></ul>"],
  ["bullet list, loose", "- one\n\n- two", "<ul><li><p>one</p></li><li><p>two</p></li></ul>"],
  ["other bullet starts a new list", "- foo\n- bar\n+ baz", "<ul><li><span>foo</span></li><li><span>bar</span></li></ul><ul><li><span>baz</span></li></ul>"],
  ["ordered list with start", "3. a\n4. b", '<ol start="3"><li><span>a</span></li><li><span>b</span></li></ol>'],
  ["ordered list with )", "1) a\n2) b", "<ol><li><span>a</span></li><li><span>b</span></li></ol>"],
  ["other delimiter starts a new list", "1. foo\n2. bar\n3) baz", '<ol><li><span>foo</span></li><li><span>bar</span></li></ol><ol start="3"><li><span>baz</span></li></ol>'],
  ["nested lists", "- a\n  - b\n    - c", "<ul><li><span>a</span><ul><li><span>b</span><ul><li><span>c</span></li></ul></li></ul></li></ul>"],
  ["item with two paragraphs", "1.  A paragraph\n    with two lines.\n\n    Second one.",
    "<ol><li><p>A paragraph<br>with two lines.</p><p>Second one.</p></li></ol>"],
  ["item with code", "- a\n  ```\n  b\n  ```", `<ul><li><span>a</span>${codeBlock("code", "b")}</li></ul>`],
  ["lazy continuation in an item", "- a\nb", "<ul><li><span>a<br>b</span></li></ul>"],
  ["list interrupts a paragraph", "Foo\n- bar\n- baz", "<p>Foo</p><ul><li><span>bar</span></li><li><span>baz</span></li></ul>"],
  ["only 1. interrupts a paragraph", "The number of windows is\n14.  The number of doors is 6.",
    "<p>The number of windows is<br>14.  The number of doors is 6.</p>"],
  ["empty marker does not interrupt", "foo\n-\nbar", "<p>foo<br>-<br>bar</p>"],
  ["a thematic break is not an item", "- foo\n* * *\n- bar", "<ul><li><span>foo</span></li></ul><hr><ul><li><span>bar</span></li></ul>"],
  // Links
  ["inline link", "[link](https://x.org/uri \"title\")", `<p><a href="https://x.org/uri" ${A} title="title">link</a></p>`],
  ["link, title in ' and ()", "[a](https://x.org 'b') [c](https://x.org (d))",
    `<p><a href="https://x.org/" ${A} title="b">a</a> <a href="https://x.org/" ${A} title="d">c</a></p>`],
  ["link in <>", "[a](<https://x.org/a b>)", `<p><a href="https://x.org/a%20b" ${A}>a</a></p>`],
  ["link: balanced parentheses", "[a](https://x.org/(foo)bar)", `<p><a href="https://x.org/(foo)bar" ${A}>a</a></p>`],
  ["link: escapes in the destination", "[a](https://x.org/\\(foo\\))", `<p><a href="https://x.org/(foo)" ${A}>a</a></p>`],
  ["link text with emphasis and code", "[*a* `b`](https://x.org)", `<p><a href="https://x.org/" ${A}><em>a</em> <code>b</code></a></p>`],
  ["no links in links", "[a [b](https://y.org) c](https://x.org)", `<p><a href="https://x.org/" ${A}>a [b](https://y.org) c</a></p>`],
  ["empty link text shows the target", "[](https://x.org)", `<p><a href="https://x.org/" ${A}>https://x.org</a></p>`],
  ["not a link without ()", "[foo] bar", "<p>[foo] bar</p>"],
  ["space before ( is not a link (the bare URL is)", "[a] (https://x.org)", `<p>[a] (<a href="https://x.org/" ${A}>https://x.org</a>)</p>`],
  ["relative link is text", "[a](/uri)", '<p><span class="not-a-link" title="Not a link: /uri">a</span></p>'],
  ["autolink", "<https://foo.bar.baz/test?q=hello&id=22&boolean>",
    `<p><a href="https://foo.bar.baz/test?q=hello&amp;id=22&amp;boolean" ${A}>https://foo.bar.baz/test?q=hello&amp;id=22&amp;boolean</a></p>`],
  ["email autolink", "<foo@bar.example.com>", `<p><a href="mailto:foo@bar.example.com" ${A}>foo@bar.example.com</a></p>`],
  ["autolink with a space is text (the bare URL is a link)", "<https://foo.bar/baz bim>",
    `<p>&lt;<a href="https://foo.bar/baz" ${A}>https://foo.bar/baz</a> bim&gt;</p>`],
  ["bare URL, sentence punctuation left out", "See https://x.org/a_(b). Or http://y.org/!",
    `<p>See <a href="https://x.org/a_(b)" ${A}>https://x.org/a_(b)</a>. Or <a href="http://y.org/" ${A}>http://y.org/</a>!</p>`],
  ["image as a link", "![foo *bar*](https://x.org/a.png \"t\")", `<p><a href="https://x.org/a.png" ${A} title="t">[image: foo *bar*]</a></p>`],
  ["image without alt", "![](https://x.org/a.png)", `<p><a href="https://x.org/a.png" ${A}>[image]</a></p>`],
  // Backslash escapes
  ["escapes", "\\*not emphasized* \\[not a link](/foo) \\`not code` \\# not a heading",
    "<p>*not emphasized* [not a link](/foo) `not code` # not a heading</p>"],
  ["escaped #", "\\# foo", "<p># foo</p>"],
  ["all ASCII punctuation escapes", "\\!\\\"\\#\\$\\%\\&\\'\\(\\)\\*\\+\\,\\-\\.\\/\\:\\;\\<\\=\\>\\?\\@\\[\\\\\\]\\^\\_\\`\\{\\|\\}\\~",
    "<p>!\"#$%&amp;'()*+,-./:;&lt;=&gt;?@[\\]^_`{|}~</p>"],
  ["other backslashes are literal", "\\a\\b \\\\*emph*", "<p>\\a\\b \\<em>emph</em></p>"],
  ["escape in a code span is literal", "`` \\[\\` ``", "<p><code>\\[\\`</code></p>"],
  ["escape in a fence is literal", "```\n\\[\\]\n```", codeBlock("code", "\\[\\]")],
  // Raw HTML is text
  ["HTML block is text", "<div>\n*hi*\n</div>", "<p>&lt;div&gt;<br><em>hi</em><br>&lt;/div&gt;</p>"],
  ["inline HTML is text", "a <b>c</b> &copy;", "<p>a &lt;b&gt;c&lt;/b&gt; &amp;copy;</p>"],
];

function codeBlock(lang, code) {
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${lang}</span>` +
    '<button type="button" class="copy" aria-label="Copy code">Copy</button></div>' +
    `<pre tabindex="0"><code>${code}</code></pre></div>`
  );
}

for (const [name, source, html] of CASES) {
  test(`commonmark: ${name}`, () => {
    assert.equal(md(source), html, JSON.stringify(source));
  });
}

test("inline alone: no block, no paragraph", () => {
  assert.equal(inline("a *b*\nc"), "a <em>b</em><br>c");
});

test("the tree is plain data", () => {
  assert.deepEqual(markdownTree("*a* `b`"), [
    { tag: "p", attrs: {}, children: [{ tag: "em", attrs: {}, children: [{ text: "a" }] }, { text: " " }, { tag: "code", attrs: {}, children: [{ text: "b" }] }] },
  ]);
});
