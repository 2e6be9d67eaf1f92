"""The study contract: a new kind joins through the registry alone and runs end to end into the
report, ``harness compare`` and ``harness regress``; the registry refuses duplicates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import Field

from harness.cli import main
from harness.errors import SpecError
from harness.spec.refs import PromptSet, StudySpec, prompt_list
from harness.store.records import Record
from harness.studies.contract import (
    Conds,
    Cost,
    Experiment,
    Headline,
    RowContext,
    RunStore,
    StudyContext,
    StudyKind,
    prompts_of,
)
from harness.studies.items import content_key
from harness.studies.registry import kind_of, kinds, register, unregister

# ---------------------------------------------------------------- the throw-away kind (one module)


class PeakActivation(StudySpec):
    """The largest SAE feature activation on each prompt (BOS excluded), and which feature."""

    kind: Literal["peak_activation"] = "peak_activation"
    prompts: PromptSet
    floor: float = Field(default=0.0, ge=0)


class PeakRecord(Record):
    """One prompt's peak activation."""

    kind: Literal["peak"] = "peak"
    sae: str
    study: str
    condition: str
    prompt_index: int
    feature: int
    value: float


class PeakKind(StudyKind[PeakActivation]):
    kind = "peak_activation"
    spec = PeakActivation
    metrics = (Headline("peak", True),)
    records = (PeakRecord,)

    def prompt_sets(self, study: PeakActivation) -> list[tuple[str, PromptSet]]:
        return prompts_of(study, "prompts")

    def validate(self, exp: Experiment, study: PeakActivation, path: str) -> None:
        if study.floor > 100:
            raise SpecError("floor above 100 can never be reached", field=f"{path}.floor")

    def cost(self, exp: Experiment, study: PeakActivation, batch_size: int) -> Cost:
        n = len(prompt_list(study.prompts))
        return Cost(1, n, 0, -(-n // batch_size), 0)

    def run(self, ctx: StudyContext, study: PeakActivation, path: str) -> None:
        import torch

        done = ctx.store.done_keys("peak")
        records = []
        for i, prompt in enumerate(prompt_list(study.prompts)):
            key = content_key({"sae": ctx.sae.label, "study": study.name, "prompt": prompt})
            if key in done:
                continue
            with torch.no_grad():
                tokens = ctx.model.to_tokens(prompt)
                _, cache = ctx.model.run_with_cache(tokens, names_filter=ctx.sae.hook_name)
                acts = ctx.sae.encode(cache[ctx.sae.hook_name])[0, 1:]
            value, flat = acts.flatten().max(0)
            records.append(
                {
                    "kind": "peak",
                    "key": key,
                    "sae": ctx.sae.label,
                    "study": study.name,
                    "condition": "target",
                    "prompt_index": i,
                    "feature": int(flat) % acts.shape[-1],
                    "value": max(float(value), study.floor),
                }
            )
        ctx.store.append(records)

    def rows(self, rc: RowContext, study: PeakActivation) -> list[dict[str, Any]]:
        from harness.analysis.rows import estimate_row
        from harness.analysis.stats import bootstrap_mean

        by_sae: dict[str, list[float]] = {}
        for r in rc.store.records("peak"):
            if r["study"] == study.name:
                by_sae.setdefault(r["sae"], []).append(r["value"])
        return [
            estimate_row((sae, study.name, "target"), "peak", bootstrap_mean(v, rc.rng))
            for sae, v in by_sae.items()
        ]

    def section(
        self, store: RunStore, sae: str, study: PeakActivation, conds: Conds, plot_dir: Path | None
    ) -> list[str]:
        row = conds.get("target", {}).get("peak")
        if row is None:
            return []
        return [
            f"## {study.name} on {sae}: peak activation",
            "",
            f"mean peak {row['value']:.4f}",
            "",
        ]

    def item_values(self, run: Any, study: PeakActivation, metric: str) -> dict[Any, float]:
        from harness.spec import sae_label

        position = {sae_label(ref): i for i, ref in enumerate(run.experiment.saes)}
        recs = run.records[run.records["kind"] == "peak"]
        return {
            (position[r["sae"]], r["study"], "target", "target", int(r["prompt_index"])): r["value"]
            for r in recs.to_dict("records")
            if r["study"] == study.name
        }


# ---------------------------------------------------------------- the tests


@pytest.fixture
def peak_kind() -> Iterator[PeakKind]:
    kind = PeakKind()
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.kind)


SPEC = """
from harness import Experiment, ToySAE
from harness.spec import Tolerance
from harness.studies.registry import kind_of

PeakActivation = kind_of("peak_activation").spec

def spec():
    return Experiment(
        name="peaks",
        saes=(ToySAE(name="relu-256"), ToySAE(name="topk-256")),
        studies=(PeakActivation(name="peaks", prompts=(
            "the golden gate bridge spans the bay",
            "she chopped the onions",
            "a cold wind blows",
            "the rocket launched toward the moon",
        )),),
        regression=(Tolerance(metric="peak", max_change=0.1),),
    )
"""


def test_a_new_kind_runs_end_to_end_through_the_registry_alone(
    peak_kind: PeakKind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "peaks.py"
    spec.write_text(SPEC)
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    common = ["--runs", str(runs), "--reports", str(reports)]
    assert main(["validate", str(spec)]) == 0
    assert "plan: 0 generations, 2 forward passes" in capsys.readouterr().out
    assert main(["plan", str(spec), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in plan["rows"]] == ["peak_activation"] * 2
    assert main(["run", str(spec), *common, "--no-mlflow", "--quiet"]) == 0
    run_dir = next(runs.glob("peaks-*"))
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    peaks = [r for r in records if r["kind"] == "peak"]
    assert len(peaks) == 8 and all(r["value"] > 0 for r in peaks)
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = {r["sae"]: r for r in summary if r["metric"] == "peak"}
    assert set(rows) == {"toy/relu-256", "toy/topk-256"}
    relu = [r["value"] for r in peaks if r["sae"] == "toy/relu-256"]
    assert rows["toy/relu-256"]["value"] == pytest.approx(np.mean(relu))
    assert rows["toy/relu-256"]["n"] == 4
    report = (reports / f"{run_dir.name}.md").read_text()
    assert "## peaks on toy/relu-256: peak activation" in report
    assert f"mean peak {np.mean(relu):.4f}" in report

    # rebuilt from the store; compared side by side; gated against itself as a baseline
    assert main(["report", str(run_dir), *common]) == 0
    assert main(["compare", str(run_dir), *common]) == 0
    compare_out = capsys.readouterr().out
    comparison = next(reports.glob("compare-*.md")).read_text()
    assert "peak" in comparison and "toy/topk-256" in comparison
    assert "comparison of 2 checkpoints" in compare_out
    assert main(["accept", str(run_dir), "--runs", str(runs)]) == 0
    assert main(["regress", str(run_dir), *common]) == 0
    gate = next(reports.glob("*-regression.md")).read_text()
    assert "peak" in gate


def test_the_kind_validates_its_own_fields(peak_kind: PeakKind, tmp_path: Path) -> None:
    from harness.spec import Experiment, ToySAE
    from harness.spec.validate import validate_static

    exp = Experiment(
        name="x",
        saes=(ToySAE(),),
        studies=({"kind": "peak_activation", "name": "p", "prompts": ("a b",), "floor": 500},),
    )
    with pytest.raises(SpecError, match=r"studies\.0\.floor"):
        validate_static(exp)
    with pytest.raises(ValueError, match="floor"):
        Experiment(
            name="x",
            saes=(ToySAE(),),
            studies=({"kind": "peak_activation", "name": "p", "prompts": ("a",), "floor": -1},),
        )


def test_unknown_kinds_and_duplicates_are_refused(peak_kind: PeakKind) -> None:
    from harness.spec import Experiment, ToySAE

    with pytest.raises(ValueError, match="already registered"):
        register(PeakKind())
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        Experiment(name="x", saes=(ToySAE(),), studies=({"kind": "nope", "name": "p"},))
    assert kind_of("peak_activation") is peak_kind
    assert [k.kind for k in kinds()][:5] == [
        "saturation",
        "ablation",
        "specificity",
        "attribution",
        "contrast",
    ]


def test_nothing_outside_a_kind_module_branches_on_the_kind() -> None:
    """Kind names appear only in their own modules (and the spec's lazy re-exports)."""
    import re

    root = Path(__file__).parents[1] / "harness"
    names = ("saturation", "ablation", "specificity", "attribution", "contrast")
    pattern = re.compile(
        r"""(kind\s*==\s*|isinstance\([^)]*\b(SaturationClamp|Ablation|Specificity|Attribution|ContrastiveSearch)\b)"""
    )
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("studies/") or rel == "spec/__init__.py":
            continue
        text = path.read_text()
        for m in pattern.finditer(text):
            line = text[: m.start()].count("\n") + 1
            snippet = text.splitlines()[line - 1]
            if m.group(2) or any(f'"{n}"' in snippet for n in names):
                offenders.append(f"{rel}:{line}: {snippet.strip()}")
    assert not offenders, offenders
