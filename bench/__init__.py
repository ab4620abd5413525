"""Benchmarks for codelinkava: `./dev bench` (or `python -m bench`) runs them all.

Each section is a module with `run(config) -> dict` (JSON-able results) and a
`render(results, out_dir) -> str` (Markdown, plots written beside it):

- `clients`: what it costs a client to turn an SSE stream into text
  (codelinkava against the floor, the seed's algorithm and the peers);
- `imports`: what `import codelinkava` costs against its peers.

A later `gateway` section sits beside them the same way (see `bench/sections.py`).
Nothing here is imported by the library or its tests, except the smoke test.
"""
