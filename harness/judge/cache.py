"""The judgement cache (Rule 4): never pay twice for the same judgement.

Keyed by (judge model, rubric content hash, temperature, the exact prompt sent), so a new rubric
version or a different template never reuses an old verdict. It is a SQLite file in WAL mode,
shared across runs and safe with several processes writing at once. Only scored verdicts are
cached: a failure is retried by the next run instead of being frozen in.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["JudgeCache", "default_cache_path"]


def default_cache_path() -> Path:
    """``$HARNESS_JUDGE_CACHE`` if set, else ``~/.cache/harness/judge-cache.sqlite``."""
    env = os.environ.get("HARNESS_JUDGE_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "harness" / "judge-cache.sqlite"


class JudgeCache:
    """A process-safe key → verdict store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # One connection per cache object; SQLite's file locking serialises writers across
        # processes, and WAL lets readers proceed while one writes.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._run("PRAGMA journal_mode=WAL")
        self._run("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: never corrupt, no fsync per put
        self._run("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, value TEXT)")

    def _run(self, sql: str, params: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @staticmethod
    def key(model: str, rubric_hash: str, temperature: float | None, prompt: str) -> str:
        """The cache key of one judgement."""
        payload = json.dumps([model, rubric_hash, temperature, prompt])
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached verdict for ``key``, if any."""
        rows = self._run("SELECT value FROM verdicts WHERE key = ?", (key,))
        return dict(json.loads(rows[0][0])) if rows else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store a verdict (the first writer wins; later identical keys are ignored)."""
        self._run(
            "INSERT OR IGNORE INTO verdicts (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def __len__(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM verdicts")[0][0])
