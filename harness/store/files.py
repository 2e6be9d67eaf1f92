"""File-level helpers of the run store: atomic whole-file writes, weights fingerprints, process
liveness."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.spec.experiment import Experiment

__all__ = [
    "alive",
    "local_weights_fingerprint",
    "write_atomic",
    "write_in_place",
]


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file so readers see the old or the new content, never a torn one; on an
    OS error (disk full, read-only) the temporary file is removed and the error raised, naming
    the file it was for."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise named(exc, path) from None
    finally:
        tmp.unlink(missing_ok=True)


def named(exc: OSError, path: Path) -> OSError:
    """``exc`` with the file it was about (a write that fails on a full disk names none)."""
    if exc.filename is None:
        return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
    return exc


def write_in_place(path: Path, text: str) -> bool:
    """Overwrite an existing file in its own blocks, without allocating new ones (the way to
    record a failure on the full disk that caused it); ``text`` is padded with spaces to the
    file's size. False when the file is missing or too small for ``text``."""
    data = text.encode()
    try:
        size = path.stat().st_size
        if len(data) > size:
            return False
        with open(path, "r+b") as fh:
            fh.write(data + b" " * (size - len(data)))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        return False
    return True


_WHOLE = 64 << 20  # files up to this size are hashed whole; larger ones by size, head and tail
_PART = 4 << 20


def local_weights_fingerprint(experiment: Experiment) -> str:
    """SHA-256 over the files of every local SAE folder and local model folder of the spec (""
    when there is none). Files up to 64 MiB are hashed whole; a larger weights file (a 7B
    model's shards) by its size and its first and last 4 MiB, so that fingerprinting a model
    folder costs milliseconds, not a read of every shard."""
    from harness.spec import LocalSAE, PretrainedModel

    folders = [Path(ref.path) for ref in experiment.saes if isinstance(ref, LocalSAE)]
    if isinstance(experiment.model, PretrainedModel) and experiment.model.path:
        folders.append(Path(experiment.model.path))
    if not folders:
        return ""
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.glob("*")):
            if path.is_file():
                h.update(path.name.encode())
                size = path.stat().st_size
                with open(path, "rb") as fh:
                    if size <= _WHOLE:
                        while block := fh.read(1 << 20):
                            h.update(block)
                    else:
                        h.update(str(size).encode())
                        h.update(fh.read(_PART))
                        fh.seek(size - _PART)
                        h.update(fh.read(_PART))
    return h.hexdigest()


def alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
