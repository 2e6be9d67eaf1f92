"""``harness bench store``: the run store's cost per record as runs grow (no model needed).

A saturation sweep like the demo's (5 levels plus the baseline, on ``n`` prompts) is written the
way a run writes it: per chunk of 64 items, a batch of generation records, then their measures,
their judgements on three rubrics and the next-token records, each after looking up the keys
already stored. Then a fresh process-like reader
opens the run and aggregates it into summary rows (bootstrap CIs included). Both are timed at
each size; per-record cost that stays flat as the size grows 10× means linear total cost.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.aggregate import summarise
from harness.spec import Experiment, FeatureByIndex, SaturationClamp, ToySAE
from harness.store import RunStore
from harness.studies.registry import kind_of

__all__ = ["StoreBench", "bench_store"]

LEVELS = (0.0, 1.0, 2.0, 5.0, 10.0)
RUBRICS = {
    "concept_presence": "concept_presence@1#bench",
    "fluency": "fluency@1#bench",
    "instruction": "instruction@1#bench",
}


@dataclass(frozen=True)
class StoreBench:
    """Timings of one size."""

    records: int
    append_s: float
    aggregate_s: float
    summary_rows: int

    def as_dict(self) -> dict[str, Any]:
        """The figures, with per-record costs in microseconds."""
        return {
            "records": self.records,
            "append_s": round(self.append_s, 3),
            "aggregate_s": round(self.aggregate_s, 3),
            "append_us_per_record": round(1e6 * self.append_s / self.records, 1),
            "aggregate_us_per_record": round(1e6 * self.aggregate_s / self.records, 1),
            "summary_rows": self.summary_rows,
        }


def _experiment(n_prompts: int) -> Experiment:
    prompts = tuple(f"prompt number {i}" for i in range(n_prompts))
    study = SaturationClamp(
        name="sweep",
        feature=FeatureByIndex(index=9, keywords=("bridge",)),
        levels=LEVELS,
        prompts=prompts,
        controls=(),  # the plain sweep the figures were first measured on
    )
    return Experiment(name="bench_store", saes=(ToySAE(),), studies=(study,))


def _records(item: Any, i: int) -> list[list[dict[str, Any]]]:
    """(generation, measure, judgements, next-token) records of one work item."""
    base = {"sae": item.sae, "study": item.study, "condition": item.condition}
    gen = {
        "kind": "generation",
        "key": item.key,
        **base,
        "prompt_set": item.prompt_set,
        "level": item.level,
        "prompt_index": item.prompt_index,
        "prompt": item.prompt,
        "clamp_value": item.level,
        "feature": 9,
        "continuation": "the bridge over the bay in the fog " * 3,
        "tokens": list(range(24)),
    }
    measure = {
        "kind": "measure",
        "key": f"m{item.key}",
        "of": item.key,
        **base,
        "prompt_set": item.prompt_set,
        "prompt_index": item.prompt_index,
        "embedder": "bench",
        "nll": 0.5 + (i % 7) / 10,
        "n_tokens": 24,
        "drift": (i % 11) / 11,
        "concept_sim": 0.3,
        "concept_gain": 0.1,
    }
    judgements = [
        {
            "kind": "judgement",
            "key": f"j{name}{item.key}",
            "of": item.key,
            **base,
            "prompt_index": item.prompt_index,
            "judge": "offline-keyword-v1",
            "rubric": ident,
            "score": (i + len(name)) % (3 if name == "concept_presence" else 2),
            "unscored_reason": None,
            "prompt": f"Grade this text on {name}.",
            "raw_reply": "Score: 1",
            "cached": False,
        }
        for name, ident in RUBRICS.items()
    ]
    out = [[gen], [measure], judgements]
    if item.level is not None:
        out.append(
            [
                {
                    "kind": "next_token",
                    "key": f"n{item.key}",
                    **base,
                    "prompt_set": item.prompt_set,
                    "prompt_index": item.prompt_index,
                    "prompt": item.prompt,
                    "base_top": "the",
                    "base_top_p": 0.4,
                    "iv_top": "bridge",
                    "iv_top_p": 0.3,
                    "changed": i % 2 == 0,
                    "p_shift": -0.1,
                    "kl_last": 0.2,
                    "kl_mean": 0.1 + (i % 5) / 50,
                    "logit_shift": {},
                }
            ]
        )
    return out


def _one(size: int, root: Path, chunk: int = 64) -> StoreBench:
    # per prompt: 6 conditions × (generation, measure, 3 judgements) + 5 next-token records
    per_prompt = (len(LEVELS) + 1) * 5 + len(LEVELS)
    exp = _experiment(max(2, round(size / per_prompt)))
    store = RunStore.for_experiment(exp, root)
    store.write_json(
        "provenance.json",
        {"judge": "offline-keyword-v1", "rubric": RUBRICS["concept_presence"], "rubrics": RUBRICS},
    )
    study = exp.studies[0]
    items = kind_of(study).items(exp, "toy/relu-256", study)
    started = time.perf_counter()
    n = 0
    for start in range(0, len(items), chunk):
        groups: list[list[dict[str, Any]]] = [[], [], [], []]
        for i, item in enumerate(items[start : start + chunk], start):
            for g, recs in zip(groups, _records(item, i), strict=False):
                g.extend(recs)
        for g in groups:
            done = store.done_keys(g[0]["kind"])  # a run looks up what is stored, then appends
            n += store.append(r for r in g if r["key"] not in done)
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = summarise(RunStore(store.dir), exp.seed)  # a fresh reader parses the file once
    aggregate_s = time.perf_counter() - started
    return StoreBench(n, append_s, aggregate_s, len(rows))


def bench_store(sizes: tuple[int, ...] = (10_000, 100_000)) -> list[StoreBench]:
    """Append and aggregate runs of about ``sizes`` records; one result per size."""
    root = Path(tempfile.mkdtemp(prefix="harness-bench-store-"))
    try:
        return [_one(size, root / str(size)) for size in sizes]
    finally:
        shutil.rmtree(root, ignore_errors=True)
