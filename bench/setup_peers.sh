#!/usr/bin/env bash
# Create bench/.venv-peers: the peer clients the bench compares against
# (LiteLLM and gpt4free's `g4f`), kept out of the project's .venv so they
# cannot change the versions the project is tested against.
#
#   bash bench/setup_peers.sh        # then: ./dev bench
#
# Needs PyPI. Takes a minute or two; re-running upgrades nothing unless asked.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv-peers
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# aiohttp: the runner's own dependency. Each peer is installed on its own so
# one that fails to install does not keep the other out; the report says which.
"$VENV/bin/python" -m pip install -q aiohttp
"$VENV/bin/python" -m pip install -q litellm || echo "setup_peers: litellm did not install" >&2
"$VENV/bin/python" -m pip install -q g4f || echo "setup_peers: g4f did not install" >&2
# The gateway section runs LiteLLM's proxy and `g4f api` as servers. `litellm[proxy]`
# does not resolve from PyPI (it pins a `litellm-proxy` release that is not there),
# so its server's imports are installed by name, as are `g4f[api]`'s.
"$VENV/bin/python" -m pip install -q fastapi uvicorn uvloop backoff orjson apscheduler \
  python-multipart pyjwt cryptography "websockets<16" fastapi-sso rq pynacl semver expression \
  mcp soundfile loguru a2wsgi || echo "setup_peers: the proxies' extras did not install" >&2
"$VENV/bin/python" -m pip list 2>/dev/null | grep -iE '^(litellm|g4f|openai|aiohttp|httpx) ' || true
