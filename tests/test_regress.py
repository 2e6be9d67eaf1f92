"""The regression gate: accept a baseline, gate an unchanged rerun (ok) and a checkpoint whose
decoder was degraded with noise (flagged, exit 1), and the nightly runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from harness.cli import main
from harness.toy.world import toy_sae_dir


def _checkpoint(root: Path, name: str, noise: float) -> Path:
    """A copy of the toy ReLU SAE; ``noise`` × each decoder row's norm of Gaussian noise added."""
    path = root / name
    shutil.copytree(toy_sae_dir("relu-256"), path)
    weights = load_file(str(path / "sae_weights.safetensors"))
    w = weights["W_dec"]
    g = torch.Generator().manual_seed(0)
    weights["W_dec"] = (
        w
        + noise
        * w.norm(dim=1, keepdim=True)
        * torch.randn(w.shape, generator=g)
        / w.shape[1] ** 0.5
    )
    save_file(weights, str(path / "sae_weights.safetensors"))
    return path


def _spec(folder: Path, checkpoint: Path, fit_gate: str = "") -> Path:
    """``fit_gate``: extra Experiment argument text, e.g. ``", fit_gate=None"``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gate.py"
    path.write_text(
        "from harness import Experiment, LocalSAE, SaturationClamp\n"
        "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
        "def spec():\n"
        "    return Experiment(name='ckpt_gate',\n"
        f"        saes=(LocalSAE(path={str(checkpoint)!r}, label='ckpt'),),\n"
        "        studies=(SaturationClamp(name='sweep', feature=GOLDEN_GATE, levels=(0, 2, 10),\n"
        "            prompts=NEUTRAL_PROMPTS[:10]),), tags=('nightly',)"
        f"{fit_gate})\n"
    )
    return path


def test_gate_flags_a_degraded_decoder_and_passes_an_unchanged_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    good = _checkpoint(tmp_path / "ckpt", "good", 0.0)
    bad = _checkpoint(tmp_path / "ckpt", "bad", 4.0)
    specs = tmp_path / "specs"
    _spec(specs, good)
    runs = ["--runs", "runs"]

    # first night: nothing to compare with yet
    assert main(["nightly", str(specs), *runs, "--no-mlflow"]) == 0
    out = capsys.readouterr().out
    assert "no baseline yet" in out
    [first] = list(Path("runs/nightly").glob("*/ckpt_gate-*"))
    # only a finished run can be accepted
    (first / "status.json").write_text(json.dumps({"status": "killed"}))
    assert main(["accept", str(first), *runs]) == 2
    (first / "status.json").write_text(json.dumps({"status": "finished"}))
    assert main(["accept", str(first), *runs]) == 0
    tags = json.loads(Path("runs/baselines.json").read_text())
    assert tags["accepted/ckpt_gate"]["dir"] == str(first.resolve())

    # an unchanged rerun (recomputed from scratch in a new folder) is not flagged
    import time

    time.sleep(1.1)  # nightly folders are named by the second
    capsys.readouterr()
    assert main(["nightly", str(specs), *runs, "--no-mlflow"]) == 0
    assert ": ok vs " in capsys.readouterr().out
    assert len(list(Path("runs/nightly").glob("*/ckpt_gate-*"))) == 2

    # the same spec on a checkpoint whose decoder got noise: the fit gate refuses to steer it...
    degraded = _spec(tmp_path / "bad_specs", bad)
    capsys.readouterr()
    assert main(["run", str(degraded), "--quiet", "--no-mlflow", *runs]) == 2
    assert "fit_gate: SAE 'ckpt' does not fit" in capsys.readouterr().err
    # ...and steered anyway (gate dropped), the regression gate flags it, exit 1
    degraded = _spec(tmp_path / "bad_specs", bad, fit_gate=", fit_gate=None")
    assert main(["run", str(degraded), "--quiet", "--no-mlflow", *runs]) == 0
    capsys.readouterr()
    assert main(["regress", "latest", *runs, "--baseline", "accepted/ckpt_gate"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "10x concept_score: 3.000 → " in out
    per_metric: dict[str, list[float]] = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) > 3 and words[1] == "sweep" and words[2].endswith("x"):
            per_metric.setdefault(words[3], []).append(float(words[2][:-1]))
    assert per_metric and all(v == sorted(v) for v in per_metric.values()), per_metric
    report = Path(out.split(" → ")[1].split()[0])
    text = report.read_text()
    assert "❌" in text and "**REGRESSED**" in text

    # a tolerance declared in the spec is what the gate uses
    lenient = (
        degraded.read_text()
        .replace(
            "tags=('nightly',), fit_gate=None)",
            "tags=('nightly',), fit_gate=None,"
            " regression=(Tolerance(metric='concept_score', max_change=3.0),))",
        )
        .replace("from harness import", "from harness.spec import Tolerance\nfrom harness import")
    )
    degraded.write_text(lenient)
    assert main(["run", str(degraded), "--quiet", "--no-mlflow", *runs]) == 0  # same run id
    assert main(["regress", "latest", *runs]) == 0


def test_gate_flags_a_decoder_whose_steering_survives_by_its_sae_quality(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Noise of 1× the row norm leaves steering intact (the behavioural checks pass) but costs
    explained variance and CE-loss score: the default SAE-quality tolerances flag it; noise of
    0.25× stays within them."""
    monkeypatch.chdir(tmp_path)
    runs = ["--runs", "runs"]
    good = _spec(tmp_path / "good", _checkpoint(tmp_path / "ckpt", "good", 0.0))
    assert main(["run", str(good), "--quiet", "--no-mlflow", *runs]) == 0
    assert main(["accept", "latest", *runs]) == 0
    for noise, expected in ((1.0, 1), (0.25, 0)):
        spec = _spec(tmp_path / f"n{noise}", _checkpoint(tmp_path / "ckpt", f"n{noise}", noise))
        assert main(["run", str(spec), "--quiet", "--no-mlflow", *runs]) == 0
        capsys.readouterr()
        assert main(["regress", "latest", *runs]) == expected, noise
        out = capsys.readouterr().out
        failing = [line for line in out.splitlines() if line.startswith("  ")]
        if expected:
            assert any("sae_quality all explained_variance: 0.9" in line for line in failing)
            assert not any("concept_score" in line for line in failing), failing
        else:
            assert failing == []


def test_an_sae_the_baseline_lacks_is_listed_unchecked_and_fails_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    def spec(name: str, saes: str) -> Path:
        path = tmp_path / f"{name}.py"
        path.write_text(
            "from harness import Experiment, SaturationClamp, ToySAE\n"
            "from harness.toy.probes import GOLDEN_GATE, NEUTRAL_PROMPTS\n"
            "def spec():\n"
            f"    return Experiment(name='pairing', saes=({saes}), sae_quality=None,\n"
            "        studies=(SaturationClamp(name='sweep', feature=GOLDEN_GATE, levels=(0, 5),\n"
            "            prompts=NEUTRAL_PROMPTS[:8], controls=()),))\n"
        )
        return path

    runs = ["--runs", "runs", "--no-mlflow", "--quiet"]
    one = spec("one", "ToySAE(name='relu-256'),")
    two = spec("two", "ToySAE(name='relu-256'), ToySAE(name='topk-256')")
    assert main(["run", str(one), *runs]) == 0
    [base] = list(Path("runs").glob("pairing-*"))
    assert main(["run", str(two), *runs]) == 0
    capsys.readouterr()
    gate = ["regress", "latest", "--runs", "runs", "--baseline", str(base)]
    assert main(gate) == 1
    out = capsys.readouterr().out
    assert "UNCHECKED SAEs" in out and "unchecked: toy/topk-256" in out, out
    report = next(Path("reports").glob("*-regression.md")).read_text()
    assert "**Unchecked SAEs** (fail the gate): toy/topk-256" in report
    assert main([*gate, "--allow-unpaired"]) == 0  # the paired SAE itself is unchanged
    out = capsys.readouterr().out
    assert ": ok vs " in out and "allowed by --allow-unpaired" in out
