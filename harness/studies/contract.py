"""The Study contract: everything one study kind owns, behind one interface.

A kind is a :class:`StudyKind` subclass in its own module under ``harness/studies/``, registered
with one line in :mod:`harness.studies.registry`. It owns its spec model, the checks on it, the
work it plans and what that costs, how it runs, how its records aggregate into summary rows, its
report section, the item metrics ``compare`` and ``regress`` use, and its place in the lab
report. Nothing outside a kind's module branches on the kind.

The contract itself is pure: a kind's module imports no model code at import time. Running a
study needs the engine (TransformerLens, SAELens, torch); a kind names the module that holds its
run function in ``engine`` (``"harness.studies.saturation_run"``), imported only when a study of
that kind runs, so views (report, compare, regress, show) never load model code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import numpy as np

from harness.spec.refs import (
    Corpus,
    FeatureRef,
    GenerationSettings,
    JudgeSettings,
    ModelRef,
    PromptSet,
    SAERef,
    StudySpec,
    prompt_list,
    sae_label,
)
from harness.store.records import Record
from harness.studies.items import ItemKey, WorkItem

__all__ = [
    "Conds",
    "Cost",
    "DescriptionNeeded",
    "Experiment",
    "Headline",
    "ItemKey",
    "RowContext",
    "RunStore",
    "StudyContext",
    "StudyKind",
    "in_spec_order",
]

S = TypeVar("S", bound=StudySpec)
Progress = Callable[[str, int, int], None]  # (stage, done, total)
Conds = dict[str, dict[str, dict[str, Any]]]  # condition → metric → summary row


class Experiment(Protocol):
    """What a study kind reads of the experiment (:class:`harness.spec.Experiment` is one); a
    protocol, so that the kinds do not depend on the experiment that collects them."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> ModelRef: ...
    @property
    def saes(self) -> tuple[SAERef, ...]: ...
    @property
    def studies(self) -> tuple[StudySpec, ...]: ...
    @property
    def generation(self) -> GenerationSettings: ...
    @property
    def judge(self) -> JudgeSettings: ...
    @property
    def seed(self) -> int: ...
    @property
    def stats_corpus(self) -> Corpus | None: ...


class RunStore(Protocol):
    """What a study kind and its report section read and write of a run
    (:class:`harness.store.RunStore` is one)."""

    @property
    def run_id(self) -> str: ...
    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]: ...
    def judgements(self, rubric: str | None = None) -> Iterator[dict[str, Any]]: ...
    def done_keys(self, kind: str) -> Mapping[str, dict[str, Any]]: ...
    def append(self, records: Iterable[dict[str, Any]]) -> int: ...
    def read_json(self, name: str) -> Any: ...
    def experiment(self) -> Experiment: ...


@dataclass(frozen=True)
class Cost:
    """What one study costs on one SAE."""

    conditions: int
    prompts: int
    generations: int
    forward_passes: int
    judge_calls: int


@dataclass(frozen=True)
class Headline:
    """An item-level metric a kind offers to ``compare`` (``headline``) and ``regress``."""

    metric: str
    higher_is_better: bool | None
    headline: bool = True  # shown by `harness compare`; False: only gated by `harness regress`


@dataclass
class StudyContext:
    """What a study needs at run time (runtime-only options stay out of the item keys)."""

    experiment: Experiment
    model: Any  # HookedTransformer
    sae: Any  # harness.engine.backend.LoadedSAE
    stats: Any  # harness.engine.feature_stats.ActivationStats | None (None: no kind needs it)
    judges: list[Any]  # one per generation rubric, the primary rubric's first
    store: RunStore
    batch_size: int | None  # None: generation picks it from a memory budget
    progress: Progress
    all_saes: dict[str, Any]
    documents: list[str] = field(default_factory=list)  # the default corpus for contexts
    study_judges: dict[str, Any] = field(default_factory=dict)  # rubric name → judge
    neuronpedia: str | None = None
    judge_batch: bool = False
    # False in a remote worker: judging happens in the driver afterwards (`StudyKind.judge`)
    judging: bool = True
    # a worker's stand-in for a judge call a study makes while it computes (an auto-interpreted
    # description): (rubric, offline record, examples) → the record to store; raises
    # DescriptionNeeded when only the driver's judge can answer. None: ask `judge_for(rubric)`
    describe: Callable[[str, dict[str, Any], list[str]], dict[str, Any]] | None = None

    def judge_for(self, rubric: str) -> Any:
        """The judge of one of the kinds' own rubrics (``StudyKind.rubrics``)."""
        return self.study_judges[rubric]


@dataclass
class RowContext:
    """What aggregation hands a kind: the store, the seed and the shared effects stream."""

    store: RunStore
    seed: int
    rng: np.random.Generator  # shared by the intervention kinds, in spec order
    primary_rubric: str  # the primary rubric's name (e.g. concept_presence)
    scores: dict[str, Any]  # rubric name → (sae, study, condition) → prompt index → score

    def generated_saes(self) -> list[str]:
        """The labels of the SAEs with stored generations, in the spec's order (then any the
        spec no longer names): rows, and the shared stream's draws, never depend on the order
        records landed in (executors, resumes)."""
        stored = dict.fromkeys(g["sae"] for g in self.store.records("generation"))
        planned = [sae_label(ref) for ref in self.store.experiment().saes]
        return [s for s in planned if s in stored] + [s for s in stored if s not in planned]


class DescriptionNeeded(Exception):
    """Raised in a worker that may not call the judge: the driver describes ``examples`` with
    its judge, stores ``record`` (its ``text`` replaced when the judge answers) and runs the
    cell again."""

    def __init__(self, rubric: str, record: dict[str, Any], examples: list[str]) -> None:
        super().__init__("a description by the run's judge is needed")
        self.rubric = rubric
        self.record = record
        self.examples = examples


class StudyKind(Generic[S]):
    """One study kind. Override what the kind has; the defaults mean "nothing of that"."""

    kind: ClassVar[str]
    spec: ClassVar[type[StudySpec]]
    engine: ClassVar[str] = ""  # module with `run(ctx, study, path)`; "": `run` is overridden
    needs_stats: ClassVar[bool] = False  # feature statistics (max activation, frequency)
    rubrics: ClassVar[tuple[str, ...]] = ()  # rubrics of the kind's own judgements
    metrics: ClassVar[tuple[Headline, ...]] = ()
    records: ClassVar[tuple[type[Record], ...]] = ()  # record kinds of its own (registered with it)
    lab_role: ClassVar[Literal["defence", "attack"] | None] = None

    # ---- the spec
    def features(self, study: S) -> list[tuple[str, FeatureRef]]:
        """Feature references with their field paths relative to the study."""
        return []

    def prompt_sets(self, study: S) -> list[tuple[str, PromptSet]]:
        """Prompts the model is run on, by field name (length-checked against the context)."""
        return []

    def instructions(self, exp: Experiment, study: S) -> list[tuple[str, str]]:
        """Instructions the model is given besides its prompts (a prompt-only control's
        prefix), by field name: a control whose words the tokenizer does not know is refused."""
        return []

    def judged_feature(self, study: S) -> tuple[str, FeatureRef] | None:
        """The feature whose concept the offline judge scores (it needs keywords)."""
        return None

    def validate(self, exp: Experiment, study: S, path: str) -> None:
        """Checks beyond the spec model that need the whole experiment (raise SpecError)."""

    def lab_role_of(self, study: S) -> Literal["defence", "attack"] | None:
        """Where the lab template puts this study's next-token tables."""
        return self.lab_role

    # ---- planning
    def cost(self, exp: Experiment, study: S, batch_size: int) -> Cost:
        """Conditions, prompts, generations, forward passes and judge calls on one SAE."""
        return Cost(1, 0, 0, 0, 0)

    def items(self, exp: Experiment, sae: str, study: S) -> list[WorkItem]:
        """The generations the study makes on one SAE (each judged on every rubric)."""
        return []

    def concept(self, study: S) -> tuple[str, tuple[str, ...]]:
        """(concept description, keywords) its generations are judged against."""
        return study.name, ()

    # ---- running
    def run(self, ctx: StudyContext, study: S, path: str) -> None:
        """Run (or resume) the study on ``ctx.sae``, appending records to ``ctx.store``."""
        if not self.engine:
            raise NotImplementedError(f"study kind {self.kind!r} has no run function")
        importlib.import_module(self.engine).run(ctx, study, path)

    def check_loaded(self, ctx: StudyContext, study: S, path: str) -> None:
        """Checks that need the loaded model, SAE and feature statistics; the runner calls it
        for every study on every SAE before the first generation (raise SpecError). The default
        calls the engine module's ``check(ctx, study, path)`` when it has one."""
        if self.engine:
            check = getattr(importlib.import_module(self.engine), "check", None)
            if check is not None:
                check(ctx, study, path)

    def judge(self, ctx: StudyContext, study: S, path: str) -> None:
        """Judge what the study stored on ``ctx.sae`` and is not judged yet (the driver's step
        after a remote worker computed it; ``ctx.model`` is None). The default calls the engine
        module's ``judge(ctx, study, path)`` when it has one."""
        if self.engine:
            judge = getattr(importlib.import_module(self.engine), "judge", None)
            if judge is not None:
                judge(ctx, study, path)

    # ---- analysis and views
    def rows(self, rc: RowContext, study: S) -> list[dict[str, Any]]:
        """Summary rows of the study beyond the judged-score rows every generation gets."""
        return []

    def section(
        self, store: RunStore, sae: str, study: S, conds: Conds, plot_dir: Path | None
    ) -> list[str]:
        """The study's report section on one SAE (Markdown lines; [] when nothing is stored)."""
        return []

    def item_values(self, run: Any, study: S, metric: str) -> dict[ItemKey, float]:
        """Per-item values of one of ``metrics`` (for pairing across runs and checkpoints).
        The default reads generations, their judgements and measures, and next-token records."""
        return dict(run.record_item_values(metric, study.name))

    def compare_rows(
        self, checkpoints: Sequence[Any], study: S, rng: np.random.Generator
    ) -> list[Any]:
        """Rows of ``harness compare``: by default one per headline metric and condition,
        paired by prompt."""
        from harness.analysis.compare_rows import item_rows

        rows: list[Any] = []
        for h in self.metrics:
            if h.headline:
                rows += item_rows(checkpoints, study.name, h.metric, h.higher_is_better, rng)
        return rows


def in_spec_order(store: RunStore, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` by the spec's SAE order, then study order (stable within those): rows built
    from them do not depend on which SAE × study cell an executor finished first."""
    exp = store.experiment()
    saes = {sae_label(ref): i for i, ref in enumerate(exp.saes)}
    studies = {s.name: i for i, s in enumerate(exp.studies)}
    last = len(saes) + len(studies)
    return sorted(
        records,
        key=lambda r: (saes.get(r.get("sae", ""), last), studies.get(r.get("study", ""), last)),
    )


def prompts_of(study: StudySpec, *names: str) -> list[tuple[str, PromptSet]]:
    """The named prompt-set fields of ``study`` that are set."""
    return [(n, getattr(study, n)) for n in names if getattr(study, n, None) is not None]


def n_prompts(*sets: PromptSet | None) -> int:
    """How many prompts the (resolved) prompt sets hold together."""
    return sum(len(prompt_list(s)) for s in sets if s is not None)
