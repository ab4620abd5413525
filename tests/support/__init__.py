"""Helpers the suites share; the only package one suite may import from another.

`scripted` (ScriptedServer, Reply, the sse/chunk/event builders), `live_gateway`
(a gateway in this process), `real_upstream`, `counting`, `abandoning`, `fixtures`
(fixtures a suite's conftest takes in by importing them) and `cli` (reading a CLI's
output). Importable as `support` because pytest puts `tests/` on `sys.path`.
"""
