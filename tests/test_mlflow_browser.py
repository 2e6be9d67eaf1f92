"""The MLflow view as a researcher sees it: a real ``mlflow server`` on loopback, rendered by
headless Chromium — the experiment's runs page and a sweep's dose–response chart.

Runs where Chromium is installed (Debian: ``apt-get install chromium``) and skips otherwise.
``HARNESS_SCREENSHOT_DIR`` keeps the screenshots (they are written to the test's folder anyway).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import mlflow
import pytest

from harness.cli import main
from harness.store import RunStore
from tests.cdp import BROWSER, browser_args
from tests.mlflow_server import mlflow_server

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium here (apt-get install chromium)"
)

SPEC = """\
from harness import *
from harness.toy.probes import NEUTRAL_PROMPTS
def spec():
    return Experiment(name='browser_demo', saes=(ToySAE(),), studies=(SaturationClamp(
        name='sweep', feature=FeatureByIndex(index=9, label='Golden Gate Bridge',
        keywords=('bridge', 'golden')), levels=(0, 1, 2, 5, 10),
        prompts=NEUTRAL_PROMPTS[:6]),))
"""


def _browse(url: str, folder: Path, shot: str) -> str:
    """The page's DOM after its scripts ran (and a screenshot of it as ``shot``)."""
    common = [*browser_args(folder / "profile"), "--virtual-time-budget=30000"]
    shot_path = folder / shot
    subprocess.run([*common, f"--screenshot={shot_path}", url], capture_output=True, timeout=180)
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, timeout=180, text=True
    ).stdout
    shot_path.with_suffix(".html").write_text(dom)  # beside the screenshot, to read on failure
    assert shot_path.read_bytes()[:4] == b"\x89PNG" and shot_path.stat().st_size > 20_000
    if keep := os.environ.get("HARNESS_SCREENSHOT_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot_path, Path(keep) / shot)
    return dom


def test_the_runs_page_a_dose_response_chart_and_a_metrics_tab_render_in_a_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.py").write_text(SPEC)
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        try:
            assert main(["run", "spec.py", "--quiet"]) == 0
            store = RunStore.open("latest", Path("runs"))
            mlflow.set_tracking_uri(uri)
            experiment = mlflow.get_experiment_by_name("browser_demo")
            assert experiment is not None
            # marked as model development: the UI opens on runs, not the GenAI traces view
            assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
            runs = mlflow.search_runs(experiment_names=["browser_demo"], output_format="list")
            [sweep] = [r for r in runs if r.data.tags.get("study") == "sweep"]
            exp_id = experiment.experiment_id

            page = f"{uri}/#/experiments/{exp_id}/runs?workflowType=machine_learning"
            dom = _browse(page, tmp_path, "mlflow-runs.png")
            assert store.run_id in dom  # the parent run, by the harness run id
            assert "Traces 0" not in dom

            keys = ["dose/concept_score", "dose/concept_score.ci_low", "dose/concept_score.ci_high"]
            query = {
                "runs": json.dumps([sweep.info.run_id]),
                "metric": json.dumps(keys[0]),
                "experiments": json.dumps([exp_id]),
                "plot_metric_keys": json.dumps(keys),
                "plot_layout": "{}",
                "x_axis": "step",
                "y_axis_scale": "linear",
                "line_smoothness": "1",
                "show_point": "true",
                "deselected_curves": "[]",
                "last_linear_y_axis_range": "[]",
                "workflowType": "machine_learning",
            }
            chart = f"{uri}/#/metric/?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"
            dom = _browse(chart, tmp_path, "mlflow-dose-response.png")
            # the chart's table: each series runs from level 0 to level 10 (steps = × max)
            for key in keys:
                assert key in dom
            assert "(step=10)" in dom and "(step=0)" in dom
            assert "invalid URL" not in dom

            # the sweep's own page, its model-metrics tab (every control on: hundreds of summary
            # rows, at most 200 metric keys) renders its charts
            assert len(sweep.data.metrics) <= 200
            tab = f"{uri}/#/experiments/{exp_id}/runs/{sweep.info.run_id}/model-metrics"
            dom = _browse(tab, tmp_path, "mlflow-sweep-metrics.png")
            # MLflow groups a run's charts by the key's prefix ("concept_score (24)") and titles
            # each chart by the rest ("10x")
            for group in ("concept_score", "fluency_score", "concept_vs_random_feature"):
                count = len([k for k in sweep.data.metrics if k.startswith(f"{group}/")])
                header = rf">{re.escape(group)}</div><div[^>]*>\({count}\)</div>"
                assert re.search(header, dom), group
            assert 'title="concept_score/0x"' in dom  # the first section's charts are drawn
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
