"""Start `streamlit run` for the browser tests and benchmarks, as `make demo` runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_streamlit(script: Path, port: int, env: dict, log: Path, cwd: Path = ROOT,
                  extra_args: tuple[str, ...] = ()) -> subprocess.Popen:
    """`streamlit run script` on 127.0.0.1:port; returns once /_stcore/health answers (60 s at most)."""
    streamlit = ROOT / ".venv" / "bin" / "streamlit"
    command = [str(streamlit) if streamlit.exists() else "streamlit", "run", str(script),
               "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false", *extra_args]
    env = {"MALLOC_ARENA_MAX": "2", **env}  # as in `make demo`: fewer glibc arenas, ~150 MB less RSS under load
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process
        except OSError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")


@contextmanager
def serving(models: Path, log: Path, env: dict | None = None) -> Iterator[str]:
    """The playground under `streamlit run` with ``models`` as its checkpoints folder (and ``env`` added);
    yields its URL and stops it afterwards (the browser tests' server fixtures)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    process = run_streamlit(ROOT / "streamlit_app.py", port := free_port(),
                            {**os.environ, "MUSICVAE_CHECKPOINTS_DIR": str(models), **(env or {})}, log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
