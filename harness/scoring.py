"""Judge stored generations: shared by a running study and by ``harness rescore``.

Judgements are keyed by (generation, judge, rubric version), so an item already judged by the same
judge and rubric is never sent again (Rule 4), and a rescore with another judge or rubric adds new
judgements next to the old ones without regenerating anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.judge.base import Judge, JudgeRequest
from harness.plan import content_key
from harness.spec import Experiment, SaturationClamp
from harness.store import RunStore

__all__ = ["judge_generations"]


def _concepts(exp: Experiment) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Study name → (concept description, keywords) for the studies whose outputs are judged."""
    out = {}
    for study in exp.studies:
        if isinstance(study, SaturationClamp):
            out[study.name] = (study.feature.label or study.name, study.feature.keywords)
    return out


def judge_generations(
    store: RunStore,
    exp: Experiment,
    judge: Judge,
    batch_size: int,
    progress: Callable[[str, int, int], None],
    keys: Sequence[str] | None = None,
) -> int:
    """Judge the generations (all, or those with ``keys``) not yet judged by this judge and
    rubric; returns how many judgements were made."""
    generations = store.done_keys("generation")
    judged = {
        r["of"]
        for r in store.records("judgement")
        if r["judge"] == judge.name and r["rubric"] == judge.rubric.ident
    }
    wanted = list(generations) if keys is None else list(keys)
    todo: list[dict[str, Any]] = [generations[k] for k in wanted if k not in judged]
    concepts = _concepts(exp)
    stage = f"judge ({judge.name})"
    total, finished = len(wanted), len(wanted) - len(todo)
    progress(stage, finished, total)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        requests = []
        for g in chunk:
            concept, keywords = concepts[g["study"]]
            requests.append(
                JudgeRequest(text=g["continuation"], concept=concept, keywords=keywords)
            )
        verdicts = judge.judge(requests)
        store.append(
            {
                "kind": "judgement",
                "key": content_key({"of": g["key"], "judge": v.judge, "rubric": v.rubric}),
                "of": g["key"],
                "sae": g["sae"],
                "study": g["study"],
                "condition": g["condition"],
                "prompt_index": g["prompt_index"],
                **v.model_dump(),
            }
            for g, v in zip(chunk, verdicts, strict=True)
        )
        finished += len(chunk)
        progress(stage, finished, total)
    return len(todo)
