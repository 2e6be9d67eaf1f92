"""Headless Chromium driven over the DevTools protocol with real time: open a page, poll its
text until it holds what a test waits for (generous deadline, no fixed sleep), screenshot it.
For single-page apps that fetch after load (Inspect's viewer), where ``--dump-dom`` and a
virtual-time budget snapshot the loading spinner."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

__all__ = ["BROWSER", "browser_args", "free_port", "page_text"]

BROWSER = next(
    (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
)


def browser_args(profile: Path) -> list[str]:
    """Headless Chromium with nothing reaching out, a fresh profile and a fixed window."""
    return [
        str(BROWSER),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,900",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_json(url: str, deadline: float) -> object:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def _drive(ws_url: str, wanted: list[str], shot: Path, deadline: float) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            counter = 0

            async def call(method: str, **params: object) -> dict[str, object]:
                nonlocal counter
                counter += 1
                await ws.send_json({"id": counter, "method": method, "params": params})
                while True:
                    msg = await ws.receive_json()
                    if msg.get("id") == counter:
                        return dict(msg.get("result") or {})

            text = ""
            while time.monotonic() < deadline:
                res = await call(
                    "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
                )
                value = res.get("result")
                text = str(value.get("value", "")) if isinstance(value, dict) else ""
                if all(w in text for w in wanted):
                    break
                await asyncio.sleep(0.5)
            img = await call("Page.captureScreenshot", format="png")
            shot.write_bytes(base64.b64decode(str(img["data"])))
            return text


def page_text(url: str, wanted: list[str], folder: Path, shot: str, timeout_s: float = 180) -> str:
    """The page's text once it holds every string of ``wanted`` (or at the deadline), with a
    screenshot ``folder/shot``."""
    assert BROWSER is not None
    port = free_port()
    deadline = time.monotonic() + timeout_s
    proc = subprocess.Popen(
        [*browser_args(folder / "cdp-profile"), f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_json(f"http://127.0.0.1:{port}/json/version", deadline)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?{url}", method="PUT")
        with urllib.request.urlopen(request, timeout=30) as r:
            tab = json.loads(r.read())
        return asyncio.run(_drive(tab["webSocketDebuggerUrl"], wanted, folder / shot, deadline))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
