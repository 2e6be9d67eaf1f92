"""A real ``mlflow server`` on loopback for the tests that need one (its own process)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "mlflow_server", "start_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    backend: str, workdir: Path, port: int, deadline_s: float = 180
) -> subprocess.Popen[bytes]:
    """Start ``mlflow server`` on 127.0.0.1:``port`` over ``backend`` (artifacts served from
    ``workdir/artifacts``, its own session so a test can kill it with its workers) and wait for
    its health check."""
    log = workdir / f"server-{port}.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(workdir / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        start_new_session=True,
    )
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            pass
        assert server.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "mlflow server did not come up"
        time.sleep(0.5)


@contextmanager
def mlflow_server(backend: str, workdir: Path, deadline_s: float = 180) -> Iterator[str]:
    """Start ``mlflow server`` on 127.0.0.1 over ``backend`` (artifacts served from
    ``workdir/artifacts``), wait for its health check, yield its URI, stop it."""
    port = free_port()
    server = start_server(backend, workdir, port, deadline_s)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)
