"""A run as an Inspect AI eval log: written with inspect_ai's own types and writer, read back
with ``read_eval_log`` (every judged generation a sample, every judgement a score, unscored as
Inspect's unscored), and listed by ``inspect view`` in headless Chromium."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import RunStore
from tests.cdp import BROWSER, free_port, page_text

inspect_log = pytest.importorskip("inspect_ai.log")

SPEC = """
from harness import *
from harness.toy.probes import NEUTRAL_PROMPTS
def spec():
    return Experiment(name='inspected_run', saes=(ToySAE(),), sae_quality=None,
        judge=JudgeSettings(kind='offline'), studies=(SaturationClamp(name='s',
        feature=FeatureByIndex(index=9, label='Golden Gate Bridge', keywords=('bridge',)),
        levels=(0, 5), controls=(), prompts=NEUTRAL_PROMPTS[:16]),))
"""


def _export(tmp_path: Path) -> tuple[RunStore, Path]:
    (tmp_path / "spec.py").write_text(SPEC)
    assert main(["run", "spec.py", "--quiet", "--no-mlflow"]) == 0
    assert main(["export", "inspect", "latest", "--out", "logs"]) == 0
    [path] = Path("logs").glob("*.eval")
    return RunStore.open("latest", Path("runs")), path


def test_the_export_reads_back_with_every_sample_and_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store, path = _export(tmp_path)
    assert path.name.endswith(f"_inspected-run_{store.run_id.rsplit('-', 1)[-1]}.eval")
    log = inspect_log.read_eval_log(str(path))
    generations = {g["key"]: g for g in store.records("generation")}
    assert log.status == "success" and log.eval.task == "inspected_run"
    assert log.samples is not None and len(log.samples) == len(generations) == 48
    finals = {
        (j["of"], j["rubric"].split("@")[0], j["judge"]): j for j in store.records("judgement")
    }
    unscored = 0
    for sample in log.samples:
        g = generations[str(sample.id)]
        assert sample.input == g["prompt"] and sample.output.completion == g["continuation"]
        assert sample.metadata["condition"] == g["condition"] and sample.metadata["sae"] == g["sae"]
        assert sample.scores is not None
        for name, score in sample.scores.items():
            rubric, judge = name.split("/", 1)
            j = finals[(str(sample.id), rubric, judge)]
            if j["score"] is None:  # Inspect's unscored: NaN with the reason, never a 0
                unscored += 1
                assert isinstance(score.value, float) and math.isnan(score.value)
                assert score.reason == j["unscored_reason"]
            else:
                assert score.value == j["score"]
    assert unscored == sum(j["score"] is None for j in finals.values()) > 0
    assert log.results is not None
    [concept] = [s for s in log.results.scores if s.name.startswith("concept_presence/")]
    mean = sum(j["score"] for (_, r, _), j in finals.items() if r == "concept_presence") / 48
    assert concept.metrics["mean"].value == pytest.approx(mean)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium here (apt-get install chromium)")
def test_inspect_view_lists_the_run_and_its_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store, _ = _export(tmp_path)
    port = free_port()
    inspect = shutil.which("inspect", path=str(Path(sys.executable).parent)) or "inspect"
    server = subprocess.Popen(
        [inspect, "view", "--log-dir", "logs", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "INSPECT_VIEW_OPEN": "0"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # poll until the viewer answers
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/log-files", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "inspect view did not start"
                time.sleep(0.3)
        wanted = ["inspected_run", "48 samples", "concept_presence/offline-semantic-v1"]
        text = page_text(f"http://127.0.0.1:{port}/", wanted, tmp_path, "inspect-view.png")
        for w in wanted:
            assert w in text, (w, text[:2000])
        assert "the chef added" in text  # a sample's input, in the samples table
        assert store.run_id.rsplit("-", 1)[-1] in text  # the log, named by the run
        if keep := os.environ.get("HARNESS_SCREENSHOT_DIR"):
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp_path / "inspect-view.png", Path(keep) / "inspect-view.png")
    finally:
        server.terminate()
        server.wait(timeout=30)
