"""The run directory's writer lock: one writer per run (Rule 5), and who holds it.

An OS lock (``flock`` on ``<run>/.lock``) is released when its process dies, even by SIGKILL.
The holder writes its pid, start time and host into the file and empties it when it lets go;
probes (``list``, ``show``, :meth:`RunStore.is_live`) read that line and never take the lock,
so a probe can never make a starting writer refuse, and a pid that is gone (or reused by a later
process, which has another start time) is never reported as the holder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import StoreError
from harness.store.files import alive

__all__ = ["RunLockedError", "holder_line", "live_holder", "writer_lock"]


class RunLockedError(StoreError):
    """Another live process is writing this run directory."""


def _started_at(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of ``/proc/PID/stat``);
    None without such a process or without ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and parens
    return fields[19] if len(fields) > 19 else None


def holder_line() -> str:
    """What a writer puts in the lock file it holds: pid, start time, host."""
    import socket

    return f"{os.getpid()} {_started_at(os.getpid()) or '-'} {socket.gethostname()}"


def live_holder(line: str) -> int | None:
    """The pid a lock file's :func:`holder_line` names while that process still lives (a pid
    reused by a later process has another start time); None for an empty or dead holder. A
    holder on another host cannot be checked from here and counts as alive."""
    import socket

    parts = line.split()
    if not parts or not parts[0].isdigit():
        return None
    pid = int(parts[0])
    if len(parts) >= 3 and parts[2] != socket.gethostname():
        return pid
    if not alive(pid):
        return None
    if len(parts) >= 2 and parts[1] != "-" and _started_at(pid) not in (None, parts[1]):
        return None
    return pid


@contextmanager
def writer_lock(
    folder: Path, wait: bool = False, say: Callable[[str], None] = print
) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block (the folder is created if need be). When
    another writer holds it: wait for it (``wait``) or raise :class:`RunLockedError` (exit 2)
    naming the holder."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / ".lock", "a+", encoding="utf-8")
    held = False
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = live_holder(fh.read())
            holder = f"pid {pid}" if pid is not None else "another process"
            if not wait:
                raise RunLockedError(
                    f"{folder} is being written by {holder}; wait for it to finish, "
                    "or pass --wait to queue behind it"
                ) from None
            say(f"waiting for {holder}, which is writing {folder} …")
            fcntl.flock(fh, fcntl.LOCK_EX)
        held = True
        fh.seek(0)
        fh.truncate()
        fh.write(holder_line())
        fh.flush()
        yield
    finally:
        if held:  # an empty file: nobody holds it (a killed holder's line names a dead pid)
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
        fh.close()  # closing the file releases the lock
