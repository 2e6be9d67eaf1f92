"""What runs inside one Ray actor of the Ray executor: a warm model, and cells computed on it.

Fault injection for tests: with ``HARNESS_RAY_FAULT_KILL`` set to a file path that does not
exist yet, the first worker to store a record mid-cell creates that file and kills its own
process with SIGKILL (the environment reaches the workers of a cluster the driver starts).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from harness.errors import HarnessError, SpecError
from harness.execute.cells import Cell, CellStore
from harness.spec import Experiment

__all__ = ["FAULT_ENV", "CellActor"]

FAULT_ENV = "HARNESS_RAY_FAULT_KILL"


class CellActor:
    """What runs inside one Ray actor: a warm model, and cells computed on it."""

    def __init__(self) -> None:
        self.warm: Any = None
        self.messages: list[str] = []

    def _say(self, text: str) -> None:
        self.messages.append(text)

    def _take_messages(self) -> list[str]:
        out, self.messages = self.messages, []
        return out

    def _warm_for(self, exp: Experiment, device: str | None) -> Any:
        from harness.engine.backend import resolve_device
        from harness.execute.worker import Warm, model_identity

        resolved = resolve_device(device or exp.model.device)
        if (
            self.warm is None
            or self.warm.identity != model_identity(exp)
            or self.warm.device != resolved
        ):
            self.warm = None  # free the old model before loading the next
            self.warm = Warm(exp, resolved, self._say)
        self.warm.adopt(exp)  # another spec on the same model: its own features and needs
        return self.warm

    def prepare(self, exp: Experiment, device: str | None) -> dict[str, Any]:
        """Load ``exp``'s model and SAEs and run every study's loaded-model checks."""
        try:
            warm = self._warm_for(exp, device)
            store = CellStore("check", exp, {}, {})
            contexts = {
                label: warm.context(exp, label, store, _no_progress, None) for label in warm.saes
            }
            warm.check(exp, contexts)
        except SpecError as exc:
            return {"error": str(exc), "spec_error": [exc.args[0], exc.field]}
        except HarnessError as exc:
            return {"error": str(exc)}
        return {
            "device": warm.device,
            "pid": os.getpid(),
            "threads": warm.threads.as_json(),
            "messages": self._take_messages(),
        }

    def run_cell(
        self,
        exp: Experiment,
        device: str | None,
        batch_size: int | None,
        run_id: str,
        cell: Cell,
        stored: dict[str, dict[str, Any]],
        provenance: dict[str, Any],
        api_judge: bool,
    ) -> dict[str, Any]:
        """Compute one cell; returns the records it made (or what it needs of the driver)."""
        from harness.studies.contract import DescriptionNeeded

        started = time.monotonic()
        warm = self._warm_for(exp, device)
        store = _FaultyStore(run_id, exp, stored, provenance)

        def describe(rubric: str, record: dict[str, Any], examples: list[str]) -> dict[str, Any]:
            if api_judge:  # only the driver calls an API judge
                raise DescriptionNeeded(rubric, record, examples)
            return record

        ctx = warm.context(exp, cell.sae, store, _no_progress, batch_size, describe=describe)
        try:
            warm.run_cell(exp, cell, ctx)
        except SpecError as exc:  # e.g. the fit gate: the driver stops the run with it
            return {"spec_error": [exc.args[0], exc.field], "messages": self._take_messages()}
        except DescriptionNeeded as need:
            return {
                "describe": {
                    "rubric": need.rubric,
                    "record": need.record,
                    "examples": need.examples,
                },
                "pid": os.getpid(),
                "messages": self._take_messages(),
            }
        return {
            "records": store.appended,
            "seconds": time.monotonic() - started,
            "pid": os.getpid(),
            "messages": self._take_messages(),
        }


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


class _FaultyStore(CellStore):
    """A cell store that kills its process at the first append when the fault hook is armed."""

    def append(self, records: Any) -> int:
        n = super().append(records)
        marker = os.environ.get(FAULT_ENV)
        if marker and n and not os.path.exists(marker):
            with open(marker, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return n
