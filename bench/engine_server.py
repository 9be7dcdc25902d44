"""Start and stop the official llama.cpp `llama-server` (built by engine/build-llama-server.sh into .engine/) on
127.0.0.1 with the bundled GGUF, as `--alias smollm2 --parallel 8` (shared by the tests and `make bench`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.sessions import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / ".engine" / "bin" / "llama-server"
ALIAS = "smollm2"
MISSING = ("llama-server is not built: run `make engine` (engine/build-llama-server.sh builds it from the "
           "llama-cpp-python==0.3.36 sdist into .engine/, about 4 minutes on 2 cores)")


class LlamaServer:
    """A running llama-server: `base_url` (…/v1), `port`, `stop()`, `start()` again on the same port."""

    def __init__(self, gguf: Path, parallel: int = 8, threads: int = 2, api_key: str | None = None,
                 port: int | None = None):
        if not SERVER.is_file():
            raise FileNotFoundError(MISSING)
        self.gguf, self.parallel, self.threads, self.api_key = gguf, parallel, threads, api_key
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "bench" / f".server-llama-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 60) -> "LlamaServer":
        """Start the server and wait until /health says it has loaded the model."""
        args = [str(SERVER), "-m", str(self.gguf), "--alias", ALIAS, "--parallel", str(self.parallel),
                "--host", "127.0.0.1", "--port", str(self.port), "-t", str(self.threads), "--no-webui",
                "--threads-http", str(4 * self.parallel)]  # sessions' idle keep-alive connections hold threads
        env = dict(os.environ)
        if self.api_key:
            env["LLAMA_API_KEY"] = self.api_key  # not on the command line, where `ps` would show it
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama-server did not become ready in time")

    def stop(self) -> None:
        """Stop the server (the port is free again)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.log_path.unlink(missing_ok=True)


def completions(base_url: str, body: dict, api_key: str | None = None, timeout: float = 120) -> dict:
    """The raw engine's /v1/completions answer (no app code in between)."""
    request = urllib.request.Request(base_url + "/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {api_key}"} if api_key else {})})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read())
