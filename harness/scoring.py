"""Judge stored generations: shared by a running study and by ``harness rescore``.

Judgements are keyed by (generation, judge, rubric version), so an item already judged by the same
judge and rubric is never sent again (Rule 4), and a rescore with another judge or rubric adds new
judgements next to the old ones without regenerating anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.judge.anthropic_judge import AnthropicJudge
from harness.judge.base import Judge, Judgement, JudgeRequest
from harness.studies.contract import Experiment, RunStore
from harness.studies.items import content_key
from harness.studies.registry import kind_of

__all__ = ["judge_generations", "judgement_record"]


def _concepts(exp: Experiment) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Study name → (concept description, keywords) its generations are judged against."""
    return {study.name: kind_of(study).concept(study) for study in exp.studies}


def judgement_record(g: dict[str, Any], v: Judgement) -> dict[str, Any]:
    """The store record of verdict ``v`` on item ``g`` (a generation or a context record)."""
    return {
        "kind": "judgement",
        "key": content_key({"of": g["key"], "judge": v.judge, "rubric": v.rubric}),
        "of": g["key"],
        "sae": g["sae"],
        "study": g["study"],
        "condition": g["condition"],
        "prompt_index": g["prompt_index"],
        **v.model_dump(),
    }


def judge_generations(
    store: RunStore,
    exp: Experiment,
    judge: Judge,
    batch_size: int,
    progress: Callable[[str, int, int], None],
    keys: Sequence[str] | None = None,
    use_batches: bool = False,
    poll_s: float = 10.0,
) -> int:
    """Judge the generations (all, or those with ``keys``) not yet judged by this judge and
    rubric; returns how many judgements were made.

    With ``use_batches`` (Anthropic judge) the uncached items go out as one Message Batch whose id
    is stored in the run before waiting, so a crash while waiting resumes by collecting that
    batch instead of submitting (and paying for) it again.
    """
    generations = store.done_keys("generation")
    judged = {
        r["of"]
        for r in store.records("judgement")
        if r["judge"] == judge.name and r["rubric"] == judge.rubric.ident
    }
    wanted = list(generations) if keys is None else list(keys)
    todo: list[dict[str, Any]] = [generations[k] for k in wanted if k not in judged]
    concepts = _concepts(exp)

    def request(g: dict[str, Any]) -> JudgeRequest:
        concept, keywords = concepts[g["study"]]
        return JudgeRequest(
            text=g["continuation"], concept=concept, keywords=keywords, prompt=g["prompt"]
        )

    stage = f"judge ({judge.name})"
    total, finished = len(wanted), len(wanted) - len(todo)
    progress(stage, finished, total)
    if use_batches and isinstance(judge, AnthropicJudge):
        return _judge_in_batches(store, judge, todo, request, poll_s, progress, stage, total)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        verdicts = judge.judge([request(g) for g in chunk])
        store.append(judgement_record(g, v) for g, v in zip(chunk, verdicts, strict=True))
        finished += len(chunk)
        progress(stage, finished, total)
    return len(todo)


def _judge_in_batches(
    store: RunStore,
    judge: AnthropicJudge,
    todo: list[dict[str, Any]],
    request: Callable[[dict[str, Any]], JudgeRequest],
    poll_s: float,
    progress: Callable[[str, int, int], None],
    stage: str,
    total: int,
) -> int:
    by_id = {
        content_key({"of": g["key"], "judge": judge.name, "rubric": judge.rubric.ident}): g
        for g in todo
    }
    # 1. what the cache already knows costs nothing
    cached = [(g, hit) for g in todo if (hit := judge.cached(request(g))) is not None]
    store.append(judgement_record(g, v) for g, v in cached)
    done = {judgement_record(g, v)["key"] for g, v in cached}
    # 2. batches submitted by an earlier, interrupted run are collected, not resubmitted
    closed = {r["key"] for r in store.records("judge_batch_done")}
    open_batches = [r for r in store.records("judge_batch") if r["key"] not in closed]
    for batch in open_batches:
        ids = [cid for cid in batch["custom_ids"] if cid in by_id and cid not in done]
        _collect(store, judge, batch["key"], ids, by_id, request, poll_s)
        done |= set(ids)
    # 3. the rest goes out as one new batch
    rest = [cid for cid in by_id if cid not in done]
    if rest:
        batch_id = judge.submit_batch({cid: request(by_id[cid]) for cid in rest})
        store.append([{"kind": "judge_batch", "key": batch_id, "custom_ids": rest}])
        _collect(store, judge, batch_id, rest, by_id, request, poll_s)
    progress(stage, total, total)
    return len(todo)


def _collect(
    store: RunStore,
    judge: AnthropicJudge,
    batch_id: str,
    ids: list[str],
    by_id: dict[str, dict[str, Any]],
    request: Callable[[dict[str, Any]], JudgeRequest],
    poll_s: float,
) -> None:
    results = judge.collect_batch(batch_id, {cid: request(by_id[cid]) for cid in ids}, poll_s)
    store.append(judgement_record(by_id[cid], results[cid]) for cid in ids)
    store.append([{"kind": "judge_batch_done", "key": batch_id}])
