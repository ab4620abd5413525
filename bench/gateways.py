"""The gateways under test, each a process of its own on 127.0.0.1, and their CPU from /proc.

- `codelinkava serve --provider openai --base-url UPSTREAM` (the project's .venv);
- the thin relay, `bench.relay` (the floor);
- LiteLLM's proxy (`litellm --config`, bench/.venv-peers): one model routed to
  `openai/...` at the upstream, a master key, `LITELLM_LOCAL_MODEL_COST_MAP=True`;
- `g4f api --provider UPSTREAM` (bench/.venv-peers). Offline it cannot start as
  installed: importing `g4f.api` fetches a provider list from the web
  (`AbstractClientFactory._live_providers_url`). It reads that list from a dated
  cache file first, so we seed one (in a temporary `G4F_CACHE_DIR`) naming only
  the upstream; `--disable-pa-auto-download` skips its other download.

Each runs in a session of its own, so it is stopped with its whole process
group, and its CPU is the sum over every process in that session.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.common import ROOT, Config, runner_env

__all__ = ["GATEWAYS", "PEERS", "ROUTES", "Gateway", "cpu_seconds", "start_gateway"]

#: name -> label, in the order they run in each round
GATEWAYS = {
    "direct": "direct (client → upstream)",
    "relay": "thin relay (the floor)",
    "codelinkava": "codelinkava serve",
    "codelinkava-messages": "codelinkava serve, /v1/messages",
    "codelinkava-responses": "codelinkava serve, /v1/responses",
    "litellm": "LiteLLM proxy",
    "g4f": "g4f api",
}
PEERS = ("litellm", "g4f")
#: Other routes of a gateway above, measured as gateways of their own in the same process:
#: name -> (the gateway, the route's path, the API its client speaks).
ROUTES = {
    "codelinkava-messages": ("codelinkava", "/v1/messages", "messages"),
    "codelinkava-responses": ("codelinkava", "/v1/responses", "responses"),
}
START_TIMEOUT = 90.0
MASTER_KEY = "sk-bench-master"
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Gateway:
    """A running gateway (or, for `direct`, just the upstream's URL)."""

    name: str
    url: str  # the chat completions endpoint (or the route's, for `api`)
    headers: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    #: The API the client speaks to `url`: "chat" (OpenAI's), "messages" (Anthropic's) or
    #: "responses" (OpenAI's Responses).
    api: str = "chat"
    #: The gateway whose process serves this route (None: its own, or none).
    shares: Gateway | None = None

    @property
    def pid(self) -> int | None:
        if self.shares is not None:
            return self.shares.pid
        return self.proc.pid if self.proc is not None else None

    def route(self, name: str, path: str, api: str) -> Gateway:
        """Another route of this gateway's process, measured on its own."""
        base = self.url.removesuffix("/v1/chat/completions")
        return Gateway(name, base + path, dict(self.headers), api=api, shares=self)

    def stop(self) -> None:
        if self.shares is not None:
            return  # the process is the other gateway's to stop
        proc = self.proc
        if proc is not None and proc.poll() is None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc is not None:
            # anything the leader left behind in its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self.log is not None:
            self.log.close()
        if self.tmp is not None:
            self.tmp.cleanup()
        self.proc = self.log = self.tmp = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(gw: Gateway, ready_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    assert gw.proc is not None
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            break
        try:
            req = urllib.request.Request(ready_url, headers=gw.headers)
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    gw.stop()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-6:]
    raise RuntimeError(f"{gw.name} did not start within {START_TIMEOUT:.0f}s: "
                       + " | ".join(line.strip()[:200] for line in tail))


def _launch(gw: Gateway, cmd: list[str], log_path: Path, env: dict[str, str],
            cwd: Path = ROOT) -> None:
    gw.log = open(log_path, "ab")  # noqa: SIM115 -- closed in Gateway.stop()
    gw.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=gw.log,
                               stderr=subprocess.STDOUT, start_new_session=True)


def start_gateway(name: str, cfg: Config, upstream: str, log_path: Path) -> Gateway:
    """Start gateway `name` in front of `upstream` (the upstream's `.../v1`); wait until ready."""
    if name == "direct":
        return Gateway(name, upstream + "/chat/completions")
    env = runner_env()
    bin_dir = Path(cfg.python).parent
    port = _free_port()
    gw = Gateway(name, f"http://127.0.0.1:{port}/v1/chat/completions")
    ready = f"http://127.0.0.1:{port}/v1/models"
    if name == "relay":
        gw.log = open(log_path, "ab")  # noqa: SIM115 -- closed in Gateway.stop()
        gw.proc = subprocess.Popen(
            [cfg.python, "-m", "bench.relay", "--upstream", upstream], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=gw.log, start_new_session=True)
        assert gw.proc.stdout is not None
        line = gw.proc.stdout.readline().strip()
        if not line.isdigit():
            gw.stop()
            raise RuntimeError("the relay did not start")
        gw.url = f"http://127.0.0.1:{int(line)}/v1/chat/completions"
        return gw
    if name == "codelinkava":
        cmd = [str(bin_dir / "codelinkava"), "serve", "--provider", "openai",
               "--base-url", upstream, "--port", str(port), "--max-concurrency", "1000",
               "--log-level", "warning"]
        _launch(gw, cmd, log_path, env)
    elif name == "litellm":
        python = cfg.peers_python
        assert python is not None
        gw.tmp = tempfile.TemporaryDirectory(prefix="bench-litellm-")
        config = Path(gw.tmp.name) / "config.json"  # YAML is a superset of JSON
        config.write_text(json.dumps({
            "model_list": [{"model_name": "gpt-3.5-turbo", "litellm_params": {
                "model": "openai/gpt-3.5-turbo", "api_base": upstream,
                "api_key": "sk-bench-upstream"}}],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"telemetry": False},
        }))
        gw.headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        ready = f"http://127.0.0.1:{port}/health/liveliness"
        cmd = [str(Path(python).parent / "litellm"), "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port)]
        _launch(gw, cmd, log_path, env, cwd=Path(gw.tmp.name))
    elif name == "g4f":
        python = cfg.peers_python
        assert python is not None
        gw.tmp = tempfile.TemporaryDirectory(prefix="bench-g4f-")
        day = datetime.date.today().strftime("%Y-%m-%d")
        cache = Path(gw.tmp.name) / ".models" / day
        cache.mkdir(parents=True)
        (cache / "providers.json").write_text(json.dumps({
            "providers": {"default": {"baseUrl": upstream}},
            "defaultModels": {"default": "gpt-3.5-turbo"},
        }))
        env = {**env, "G4F_CACHE_DIR": gw.tmp.name, "HOME": gw.tmp.name}
        cmd = [str(Path(python).parent / "g4f"), "api", "--bind", f"127.0.0.1:{port}",
               "--no-gui", "--provider", upstream, "--model", "gpt-3.5-turbo",
               "--disable-pa-auto-download", "--no-access-log", "--ignore-cookie-files"]
        _launch(gw, cmd, log_path, env, cwd=Path(gw.tmp.name))
    else:
        raise ValueError(f"no gateway {name!r}")
    _wait_ready(gw, ready, log_path)
    return gw


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU used so far by every process in session `pid` (each gateway leads its own).

    `stat`: utime + stime from /proc/<p>/stat, in clock ticks (1/100 s here), and
    counting threads that have exited; `sched`: the first field of each live
    thread's /proc/<p>/task/<t>/schedstat, in nanoseconds.
    """
    stat = sched = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
            rest = raw[raw.rindex(")") + 2 :].split()
            if int(rest[3]) != pid:  # the session id
                continue
            stat += (int(rest[11]) + int(rest[12])) / _TICK
            for task in os.scandir(f"/proc/{entry.name}/task"):
                with open(f"{task.path}/schedstat") as f:
                    sched += int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return {"stat": stat, "sched": sched}
