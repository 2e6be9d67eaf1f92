"""Command-line overrides of a loaded spec: ``run --judge K`` (outside the spec hash: the run
keeps its id and its generations) and ``run --limit N`` (a partial run with an id of its own)."""

from __future__ import annotations

from typing import Any

from harness.spec import Experiment, PromptFile, prompt_list
from harness.studies.registry import kind_of

__all__ = ["limited", "with_judge"]


def with_judge(exp: Experiment, kind: str | None) -> Experiment:
    """``exp`` judged by ``kind`` (validated again); ``None``: unchanged."""
    if kind is None or kind == exp.judge.kind:
        return exp
    data = exp.model_dump()
    data["judge"] = {**data["judge"], "kind": kind}
    return Experiment.model_validate(data)


def limited(exp: Experiment, n: int | None) -> Experiment:
    """``exp`` with every prompt set of every study cut to its first ``n`` prompts (one item per
    prompt and condition: the first ``n`` items of each condition) and ``limit=n`` recorded, so
    the partial run gets a run id of its own and its reports say it is partial."""
    if n is None:
        return exp
    studies: list[Any] = []
    for study in exp.studies:
        cut = {
            name: prompt_list(prompts)[:n]
            for name, prompts in kind_of(study).prompt_sets(study)
            if not isinstance(prompts, PromptFile)
        }
        studies.append({**study.model_dump(), **cut})
    return Experiment.model_validate({**exp.model_dump(), "studies": studies, "limit": n})
