"""Stop what a local Ray cluster leaves behind when its driver dies without a word (SIGKILL,
the OOM killer).

A clean end (``RayExecutor.close``, Ctrl-C, SIGTERM) shuts the cluster down at once (measured
here: every Ray process gone 2.3 s after SIGTERM). After a SIGKILL of the driver, Ray's GCS and
raylet go at once and the actors within ~5 s, but the dashboard and runtime-env agents the raylet
started poll for it and give up only after about 60 s (measured: 63 s). This watchdog, started
by the executor next to a cluster it owns (``python -I ray_reaper.py DRIVER RAYLET``: this file
alone, standard library only, so it is watching within milliseconds), notes the raylet's
descendants once a second while driver and raylet live and kills those left when either is gone
(after a clean shutdown, none: it ends with the cluster); a pid reused by another process
(another start time) is left alone. Measured with it: every Ray process gone 2.3 s after the
driver's SIGKILL. Linux only (it reads ``/proc``); elsewhere the agents still exit on their own.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["descendants", "main"]


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a process, None when it is gone (or a zombie: dead, not yet
    reaped by its parent)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid → start time."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            parents.setdefault(info[0], []).append(int(entry.name))
            starts[int(entry.name)] = info[1]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = starts[child]
                todo.append(child)
    return found


def _same(pid: int, first: tuple[int, str] | None) -> bool:
    """Whether ``pid`` is still the process first seen (alive, same start time)."""
    now = _stat(pid)
    return first is not None and now is not None and now[1] == first[1]


def main(driver: int, raylet: int, poll_s: float = 1.0) -> None:
    """Until the driver or the raylet is gone, note the raylet's descendants; then kill those
    still alive (after a clean shutdown: none, and the watchdog ends with the cluster)."""
    first_driver, first_raylet = _stat(driver), _stat(raylet)
    seen: dict[int, str] = {}
    while _same(driver, first_driver) and _same(raylet, first_raylet):
        seen.update(descendants(raylet))
        time.sleep(poll_s)
    for pid, started in seen.items():
        info = _stat(pid)
        if info is not None and info[1] == started:  # still that process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
