"""The compute side of a run, shared by every executor: load the model and SAEs once, check the
studies against them, and run cells.

The local executor uses one :class:`Warm` in the driver process, writing the run store directly
and judging as it goes; the Ray executor keeps one per actor, warm across the cells (and runs)
of the same model, writing each cell into a :class:`harness.execute.cells.CellStore`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.execute.cells import QUALITY, Cell
from harness.spec import Experiment, PretrainedModel, sae_label
from harness.studies.contract import Progress, RunStore, StudyContext
from harness.studies.registry import kind_of

__all__ = ["Warm", "model_identity"]


def model_identity(exp: Experiment) -> str:
    """What a warm worker must have loaded to run ``exp``'s cells: its model and SAEs."""
    from harness.studies.items import content_key

    return content_key(
        {
            "model": exp.model.model_dump(mode="json", exclude={"device"}),
            "saes": [ref.model_dump(mode="json") for ref in exp.saes],
        }
    )


class Warm:
    """A model and the SAEs of one experiment, loaded on one device, with their feature
    statistics (computed once, on first use)."""

    def __init__(self, exp: Experiment, device: str, say: Callable[[str], None]) -> None:
        from harness.engine.backend import load_model, load_sae
        from harness.toy.world import eval_documents

        self.identity = model_identity(exp)
        self.device = device
        self.say = say
        began = time.monotonic()
        self.loading: dict[str, Any] | None = None  # how a real model was loaded, and why
        if isinstance(exp.model, PretrainedModel):
            from harness.engine.preflight import preflight

            checked = preflight(exp, device)
            self.model = load_model(exp.model, device, rule=checked.rule)
            if checked.prepend_bos is not None:  # generation and statistics as trained
                self.model.cfg.default_prepend_bos = checked.prepend_bos
            self.loading = checked.as_json()
            say(f"model loaded by {checked.rule.describe()}")
        else:
            self.model = load_model(exp.model, device)
        saes = [load_sae(ref, sae_label(ref), device) for ref in exp.saes]
        self.saes = {sae.label: sae for sae in saes}
        say(f"model and {len(saes)} SAE(s) loaded on {device} in {time.monotonic() - began:.1f} s")
        from harness.engine.threads import apply_threads

        self.threads = apply_threads(self.model, device)
        self.documents = eval_documents()
        self._model_json = exp.model.model_dump(mode="json", exclude={"device"})
        if self.loading is not None:  # cached statistics belong to these weights, so loaded
            self._model_json["loading"] = self.loading["rule"]
            self._model_json["revision"] = self.loading["revision"]
        self._stats: dict[tuple[str, str], Any] = {}  # (SAE, corpus) → feature statistics
        self._fit: set[str] = set()  # SAEs the fit gate has passed
        self.exp: Experiment | None = None
        self.adopt(exp)

    def adopt(self, exp: Experiment) -> None:
        """Take on ``exp`` (same model and SAEs as loaded): its checks against the loaded
        weights, its features resolved, and what its studies need (statistics, quality)."""
        if self.exp is not None and exp == self.exp:
            return
        from harness.analysis.quality import quality_measurable
        from harness.engine.backend import neuronpedia_id
        from harness.engine.feature_stats import stats_corpus
        from harness.engine.features import resolve_feature
        from harness.spec.validate import study_features, validate_loaded

        assert model_identity(exp) == self.identity, "a warm model serves one model and SAE set"
        validate_loaded(exp, self.model, list(self.saes.values()))
        for sae in self.saes.values():  # resolve every feature before the first generation
            for path, ref in study_features(exp):
                resolve_feature(self.model, sae, ref, path, self.saes)
        self.neuronpedia = {sae_label(ref): neuronpedia_id(ref) for ref in exp.saes}
        self.needs_stats = any(kind_of(s).needs_stats for s in exp.studies)
        self.quality = exp.sae_quality if quality_measurable(exp) else None
        wanted = self.needs_stats or self.quality is not None
        self.stat_docs, self.stat_source = stats_corpus(exp) if wanted else ([], "")
        self.exp = exp

    def stats(self, label: str) -> Any:
        """The feature statistics of one SAE (None when no study needs them)."""
        if not self.needs_stats:
            return None
        if (label, self.stat_source) not in self._stats:
            from harness.engine.feature_stats import cached_activation_stats

            stats, cached = cached_activation_stats(
                self.model, self._model_json, self.saes[label], self.stat_docs, self.stat_source
            )
            self.say(
                f"feature statistics for {label}: {self.stat_source}, {stats.n_tokens} tokens"
                + (" (cached)" if cached else "")
            )
            self._stats[label, self.stat_source] = stats
        return self._stats[label, self.stat_source]

    def context(
        self,
        exp: Experiment,
        label: str,
        store: RunStore,
        progress: Progress,
        batch_size: int | None,
        judges: list[Any] | None = None,
        study_judges: dict[str, Any] | None = None,
        judge_batch: bool = False,
        describe: Any = None,
    ) -> StudyContext:
        """The study context of one SAE; without judges it computes only (a remote worker)."""
        return StudyContext(
            exp,
            self.model,
            self.saes[label],
            self.stats(label),
            judges or [],
            store,
            batch_size,
            progress,
            self.saes,
            documents=self.documents,
            study_judges=study_judges or {},
            neuronpedia=self.neuronpedia.get(label),
            judge_batch=judge_batch,
            judging=judges is not None,
            describe=describe,
        )

    def check(self, exp: Experiment, contexts: dict[str, StudyContext]) -> None:
        """Every study's loaded-model checks on every SAE, before the first cell (SpecError)."""
        for ctx in contexts.values():
            for i, study in enumerate(exp.studies):
                kind_of(study).check_loaded(ctx, study, f"studies.{i}")

    def run_cell(self, exp: Experiment, cell: Cell, ctx: StudyContext) -> None:
        """Compute one cell into ``ctx.store`` (and judge it, when ``ctx`` has judges)."""
        if cell.study == QUALITY:
            from harness.engine.sae_quality import record_quality

            assert self.quality is not None
            measured = record_quality(
                self.model,
                ctx.sae,
                self.quality,
                self.stat_docs,
                self.stat_source,
                ctx.store,  # type: ignore[arg-type]
                lambda done, total: ctx.progress("SAE quality", done, total),
            )
            self.say(f"SAE quality of {cell.sae}: " + ("measured" if measured else "stored"))
            return
        assert cell.study_index is not None
        self.fit_gate(exp, cell.sae, ctx)
        study = exp.studies[cell.study_index]
        kind_of(study).run(ctx, study, f"studies.{cell.study_index}")

    def fit_gate(self, exp: Experiment, label: str, ctx: StudyContext) -> None:
        """Before the first intervention on SAE ``label``: its measured fit on the model as
        loaded must pass ``exp.fit_gate`` (SpecError naming the likely cause otherwise)."""
        if exp.fit_gate is None or label in self._fit:
            return
        from harness.analysis.fit import fit_verdict, likely_causes
        from harness.analysis.quality import quality_values
        from harness.engine.sae_quality import measure_quality, quality_key
        from harness.errors import SpecError

        self._fit.add(label)
        if self.quality is None:
            self.say(f"fit gate for {label}: not measured (no SAE quality in this run)")
            return
        key = quality_key(label, self.quality, self.stat_source)
        stored = [r for r in ctx.store.records(QUALITY) if r.get("key") == key]
        record = (
            stored[0]
            if stored
            else measure_quality(self.model, ctx.sae, self.stat_docs, self.quality)
        )
        ok, line = fit_verdict(quality_values(record), exp.fit_gate)
        self.say(f"fit gate for {label}: {line}")
        if not ok:
            self._fit.discard(label)
            raise SpecError(
                f"SAE {label!r} does not fit the model as loaded ({line}); likely cause — "
                f"{likely_causes(exp, label, self.loading)}. Lower or drop the gate with "
                "Experiment(fit_gate=FitGate(...) or None) to steer it anyway",
                field="fit_gate",
            )
