"""The judging service: every judgement of a run goes through :func:`judge_items` (generations
of a running study, ``harness rescore``, a specificity study's contexts).

Judgements are keyed by (item, judge, rubric version), so an item already scored by the same
judge and rubric is never sent again (Rule 4), and a rescore with another judge or rubric adds
new judgements next to the old ones without regenerating anything. An unscored judgement (API
failure, refusal, unreadable verdict) is asked again by the next run or rescore, up to
``max_attempts`` in all; each attempt is its own record (key with ``attempt``), and views read
the final one per item (:meth:`harness.store.RunStore.judgements`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.judge.anthropic_judge import AnthropicJudge
from harness.judge.base import Judge, Judgement, JudgeRequest
from harness.studies.contract import Experiment, RunStore
from harness.studies.items import content_key
from harness.studies.registry import kind_of

__all__ = ["MAX_ATTEMPTS", "describe_with", "judge_generations", "judge_items", "judgement_record"]

MAX_ATTEMPTS = 3  # judgements per item and rubric while unscored (the first included)


def _concepts(exp: Experiment) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Study name → (concept description, keywords) its generations are judged against."""
    return {study.name: kind_of(study).concept(study) for study in exp.studies}


def judgement_key(of: str, judge: str, rubric: str, attempt: int = 0) -> str:
    """The store key of one judging attempt (the first attempt's key has no attempt field)."""
    ident: dict[str, Any] = {"of": of, "judge": judge, "rubric": rubric}
    if attempt:
        ident["attempt"] = attempt
    return content_key(ident)


def judgement_record(g: dict[str, Any], v: Judgement, attempt: int = 0) -> dict[str, Any]:
    """The store record of verdict ``v`` on item ``g`` (a generation or a context record)."""
    record = {
        "kind": "judgement",
        "key": judgement_key(g["key"], v.judge, v.rubric, attempt),
        "of": g["key"],
        "sae": g["sae"],
        "study": g["study"],
        "condition": g["condition"],
        "prompt_index": g["prompt_index"],
        **v.model_dump(),
    }
    if attempt:
        record["attempt"] = attempt
    return record


def _attempts(store: RunStore, judge: Judge) -> dict[str, tuple[bool, int]]:
    """item key → (scored by this judge and rubric, attempts so far)."""
    out: dict[str, tuple[bool, int]] = {}
    for r in store.records("judgement"):
        if r["judge"] == judge.name and r["rubric"] == judge.rubric.ident:
            scored, n = out.get(r["of"], (False, 0))
            out[r["of"]] = (scored or r["score"] is not None, n + 1)
    return out


def judge_items(
    store: RunStore,
    judge: Judge,
    items: Sequence[dict[str, Any]],
    request: Callable[[dict[str, Any]], JudgeRequest],
    batch_size: int,
    progress: Callable[[str, int, int], None],
    use_batches: bool = False,
    poll_s: float = 10.0,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Judge every item (a stored record with a key) not yet scored by this judge and rubric and
    tried fewer than ``max_attempts`` times (once for a deterministic judge such as the offline
    one); returns how many judgements were made.

    With ``use_batches`` (Anthropic judge) the uncached items go out as one Message Batch whose id
    is stored in the run before waiting, so a crash while waiting resumes by collecting that
    batch instead of submitting (and paying for) it again.
    """
    state = _attempts(store, judge)
    if getattr(judge, "deterministic", False):
        max_attempts = 1  # a deterministic judge would give the same unscored verdict again
    todo: list[tuple[dict[str, Any], int]] = []
    for g in items:
        scored, n = state.get(g["key"], (False, 0))
        if not scored and n < max_attempts:
            todo.append((g, n))
    stage = f"judge ({judge.name}, {judge.rubric.name})"
    total, finished = len(items), len(items) - len(todo)
    progress(stage, finished, total)
    if use_batches and isinstance(judge, AnthropicJudge):
        return _judge_in_batches(store, judge, todo, request, poll_s, progress, stage, total)
    budget = getattr(judge, "budget", None)  # a paid judge's ledger (harness.judge.budget)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        requests = [request(g) for g, _ in chunk]
        if budget is not None:  # cached verdicts are free: only the calls to make count
            cached = getattr(judge, "cached", lambda _r: None)
            budget.allow(sum(1 for r in requests if cached(r) is None))
        verdicts = judge.judge(requests)
        store.append(judgement_record(g, v, n) for (g, n), v in zip(chunk, verdicts, strict=True))
        if budget is not None:
            budget.charge(v.cost_usd for v in verdicts)
        finished += len(chunk)
        progress(stage, finished, total)
    return len(todo)


def judge_generations(
    store: RunStore,
    exp: Experiment,
    judge: Judge,
    batch_size: int,
    progress: Callable[[str, int, int], None],
    keys: Sequence[str] | None = None,
    use_batches: bool = False,
    poll_s: float = 10.0,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Judge the stored generations (all, or those with ``keys``) against their study's concept
    (:func:`judge_items`); returns how many judgements were made."""
    generations = store.done_keys("generation")
    wanted = list(generations) if keys is None else [k for k in keys if k in generations]
    concepts = _concepts(exp)

    def request(g: dict[str, Any]) -> JudgeRequest:
        concept, keywords = concepts[g["study"]]
        return JudgeRequest(
            text=g["continuation"], concept=concept, keywords=keywords, prompt=g["prompt"]
        )

    items = [generations[k] for k in wanted]
    return judge_items(
        store, judge, items, request, batch_size, progress, use_batches, poll_s, max_attempts
    )


def _judge_in_batches(
    store: RunStore,
    judge: AnthropicJudge,
    todo: list[tuple[dict[str, Any], int]],
    request: Callable[[dict[str, Any]], JudgeRequest],
    poll_s: float,
    progress: Callable[[str, int, int], None],
    stage: str,
    total: int,
) -> int:
    by_id = {judgement_key(g["key"], judge.name, judge.rubric.ident, n): (g, n) for g, n in todo}
    # 1. what the cache already knows costs nothing
    cached = [(cid, hit) for cid, (g, _) in by_id.items() if (hit := judge.cached(request(g)))]
    store.append(judgement_record(by_id[cid][0], v, by_id[cid][1]) for cid, v in cached)
    done = {cid for cid, _ in cached}
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
        if judge.budget is not None:  # a batch is paid in one go: all of it, or none
            judge.budget.allow(len(rest))
        batch_id = judge.submit_batch({cid: request(by_id[cid][0]) for cid in rest})
        store.append([{"kind": "judge_batch", "key": batch_id, "custom_ids": rest}])
        _collect(store, judge, batch_id, rest, by_id, request, poll_s)
    progress(stage, total, total)
    return len(todo)


def _collect(
    store: RunStore,
    judge: AnthropicJudge,
    batch_id: str,
    ids: list[str],
    by_id: dict[str, tuple[dict[str, Any], int]],
    request: Callable[[dict[str, Any]], JudgeRequest],
    poll_s: float,
) -> None:
    results = judge.collect_batch(batch_id, {cid: request(by_id[cid][0]) for cid in ids}, poll_s)
    store.append(judgement_record(by_id[cid][0], results[cid], by_id[cid][1]) for cid in ids)
    store.append([{"kind": "judge_batch_done", "key": batch_id}])


def describe_with(judge: Judge, record: dict[str, Any], examples: list[str]) -> dict[str, Any]:
    """A description ``record`` with the judge's description of ``examples`` when it gives one
    (an API judge; the offline judge keeps the record's offline text)."""
    if isinstance(judge, AnthropicJudge):
        text = judge.describe(examples)
        if text is not None:
            return {**record, "text": text, "source": judge.name}
    return record
