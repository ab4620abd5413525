"""The page's Markdown renderer (static/markdown.js), run in the browser on the page itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from support.live_gateway import LiveGateway

from .chat import open_chat
from .conftest import make_context, watch

CASES = [
    (
        "Hello *world* and **bold** and ***both***",
        "<p>Hello <em>world</em> and <strong>bold</strong> and <em><strong>both</strong></em></p>",
    ),
    ("*a **b***", "<p><em>a <strong>b</strong></em></p>"),
    (
        "snake_case_name and __init__ and _under_",
        "<p>snake_case_name and <strong>init</strong> and <em>under</em></p>",
    ),
    ("2 * 3 * 4 and ~~gone~~ and ~one~", "<p>2 * 3 * 4 and <del>gone</del> and ~one~</p>"),
    ("\\*not\\* \\<b\\>", "<p>*not* &lt;b&gt;</p>"),
    ("`a *b* <c>` and ``x ` y``", "<p><code>a *b* &lt;c&gt;</code> and <code>x ` y</code></p>"),
    ("line one\nline two", "<p>line one<br>line two</p>"),
    (
        "# One\n## Two ##\n###### Six",
        '<h3 class="md-h1">One</h3><h4 class="md-h2">Two</h4><h6 class="md-h6">Six</h6>',
    ),
    ("para\n\n---\n\nmore", "<p>para</p><hr><p>more</p>"),
    (
        "> quoted **bold**\n> next\n\nafter",
        "<blockquote><p>quoted <strong>bold</strong><br>next</p></blockquote><p>after</p>",
    ),
    (
        "- a\n- b\n  - c\n  - d\n- e",
        "<ul><li><span>a</span></li><li><span>b</span><ul><li><span>c</span></li>"
        "<li><span>d</span></li></ul></li><li><span>e</span></li></ul>",
    ),
    ("3. c\n4. d", '<ol start="3"><li><span>c</span></li><li><span>d</span></li></ol>'),
    ("1. a\n\n2. b", "<ol><li><p>a</p></li><li><p>b</p></li></ol>"),
    (
        "Steps:\n1. first\n2. second",
        "<p>Steps:</p><ol><li><span>first</span></li><li><span>second</span></li></ol>",
    ),
    (
        "```js\nlet a = '<b>';\n\n  indented\n```\nafter",
        '<div class="code-block"><div class="code-head"><span class="code-lang">js</span>'
        '<button type="button" class="copy" aria-label="Copy code">Copy</button></div>'
        "<pre tabindex=\"0\"><code>let a = '&lt;b&gt;';\n\n  indented</code></pre></div>"
        "<p>after</p>",
    ),
    (
        "~~~\nno lang\n~~~",
        '<div class="code-block"><div class="code-head"><span class="code-lang">code</span>'
        '<button type="button" class="copy" aria-label="Copy code">Copy</button></div>'
        '<pre tabindex="0"><code>no lang</code></pre></div>',
    ),
    (
        "| a | b | c |\n|:--|:-:|--:|\n| 1 | **2** | 3 \\| 4 |\n| 5 |",
        '<div class="table-wrap"><table><thead><tr><th class="align-left">a</th>'
        '<th class="align-center">b</th><th class="align-right">c</th></tr></thead><tbody><tr>'
        '<td class="align-left">1</td><td class="align-center"><strong>2</strong></td>'
        '<td class="align-right">3 | 4</td></tr><tr><td class="align-left">5</td>'
        '<td class="align-center"></td><td class="align-right"></td></tr></tbody></table></div>',
    ),
    (
        '[site](https://example.com/a?b=1&c=2 "Title") <https://x.org> <me@x.org> www https://y.org/p).',
        '<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer" '
        'target="_blank" title="Title">site</a> '
        '<a href="https://x.org/" rel="noopener noreferrer" target="_blank">https://x.org</a> '
        '<a href="mailto:me@x.org" rel="noopener noreferrer" target="_blank">me@x.org</a> www '
        '<a href="https://y.org/p" rel="noopener noreferrer" target="_blank">https://y.org/p</a>).</p>',
    ),
    (
        "[a](javascript:alert(1)) [b](vbscript:x) [c](/relative) [d](file:///etc/passwd) "
        "<javascript:alert(1)>",
        '<p><span class="not-a-link" title="Not a link: javascript:alert(1)">a</span> '
        '<span class="not-a-link" title="Not a link: vbscript:x">b</span> '
        '<span class="not-a-link" title="Not a link: /relative">c</span> '
        '<span class="not-a-link" title="Not a link: file:///etc/passwd">d</span> '
        "&lt;javascript:alert(1)&gt;</p>",
    ),
    (
        '<b onclick="x()">hi</b> <img src=x onerror=alert(1)>',
        '<p>&lt;b onclick="x()"&gt;hi&lt;/b&gt; &lt;img src=x onerror=alert(1)&gt;</p>',
    ),
    (
        "![alt text](https://x.org/i.png)",
        '<p><a href="https://x.org/i.png" rel="noopener noreferrer" target="_blank">'
        "[image: alt text]</a></p>",
    ),
]

RENDER = """async ([source]) => {
  const m = await import("/static/markdown.js");
  const div = document.createElement("div");
  div.append(m.renderMarkdown(source));
  return div.innerHTML;
}"""


@pytest.fixture(scope="module")
def md_page(browser: Browser, proxy: LiveGateway) -> Iterator[Page]:
    context = make_context(browser)
    watched = watch(context)
    open_chat(watched.page, proxy)
    yield watched.page
    assert watched.errors == []
    assert watched.violations() == []
    context.close()


@pytest.mark.parametrize(("source", "html"), CASES, ids=[c[0][:30] for c in CASES])
def test_markdown(md_page: Page, source: str, html: str) -> None:
    assert md_page.evaluate(RENDER, [source]) == html


SERIALISED = """async ([sources]) => {
  const m = await import("/static/markdown.js");
  const parse = await import("/static/markdown-parse.js");
  return sources.filter((source) => {
    const div = document.createElement("div");
    div.append(m.renderMarkdown(source));
    return div.innerHTML !== parse.toHtml(parse.markdownTree(source));
  });
}"""


def test_the_parsers_html_is_the_browsers(md_page: Page) -> None:
    """toHtml (what tests/js checks) writes what the browser's innerHTML writes of the DOM."""
    hostile = [text[:2000] for text in HOSTILE_INPUTS.values()]
    odd = ["x \"&<>\u00a0' y", '[a](javascript:"<x>"&) [b](https://x.org \'t\u00a0<"&>\')']
    sources = [source for source, _ in CASES] + [DOCUMENT, *hostile, *odd]
    assert md_page.evaluate(SERIALISED, [sources]) == []


DOCUMENT = """# Notes

Some *text* with `code` and a [link](https://example.com).

- one
- two **bold**
  1. nested
  2. more

```python
def f(x):
    return x * 2
```

| a | b |
|---|---|
| 1 | 2 |

> quote
> and *more*

The end: https://example.org/done.
"""


def test_the_streaming_view_ends_as_the_whole_render(md_page: Page) -> None:
    """Fed piece by piece, the view ends exactly as a render of the whole text."""
    result: dict[str, Any] = md_page.evaluate(
        """async ([text]) => {
          const m = await import("/static/markdown.js");
          const whole = document.createElement("div");
          whole.append(m.renderMarkdown(text));
          const out = {};
          for (const step of [1, 3, 7, 40]) {
            const live = document.createElement("div");
            const view = new m.MarkdownView(live);
            for (let i = step; i < text.length + step; i += step) view.update(text.slice(0, i));
            out[step] = live.innerHTML === whole.innerHTML;
          }
          // A growing code block is extended in place: the same node throughout.
          const live = document.createElement("div");
          const view = new m.MarkdownView(live);
          view.update("```\\nfirst");
          const code = live.querySelector("code");
          view.update("```\\nfirst line\\nsecond");
          out.same = live.querySelector("code") === code
            && code.textContent === "first line\\nsecond";
          return out;
        }""",
        [DOCUMENT],
    )
    assert result == {"1": True, "3": True, "7": True, "40": True, "same": True}


HOSTILE_INPUTS = {
    "stars": "*a " * 20_000,
    "underscores": "_a_b " * 12_000,
    "brackets": "[](" * 20_000,
    "angle links": "[x](<" * 12_000,
    "backticks": "`a`` " * 12_000,
    "nested": "*" * 30_000 + "a" + "*" * 30_000,
    "pipes": "| a " * 15_000 + "\n|" + "---|" * 15_000,
    "list": "- " * 30_000,
    "quotes": "> " * 30_000,
}


@pytest.mark.parametrize("name", list(HOSTILE_INPUTS))
def test_pathological_input_renders_fast(md_page: Page, name: str) -> None:
    took = md_page.evaluate(
        """async ([source]) => {
          const m = await import("/static/markdown.js");
          const start = performance.now();
          const div = document.createElement("div");
          div.append(m.renderMarkdown(source));
          return performance.now() - start;
        }""",
        [HOSTILE_INPUTS[name]],
    )
    assert took < 250, f"{name}: {took:.0f} ms"
