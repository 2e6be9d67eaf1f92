"""Real checkpoints on the offline fixture hub (tests/hub_fixture.py): configs checked before any
weights load, the model loaded the way its SAE was trained, the fit gate, local folders, and the
cache as the only source of files (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import RunStore
from harness.toy.world import eval_documents
from tests.conftest import REPO, use_hub
from tests.hub_fixture import PROXY_REPO, configs_only, sae_for_pythia, snapshot

PYTHIA_SPEC = """
from harness import Experiment, FeatureByIndex, GenerationSettings, PretrainedModel, LocalSAE
from harness.spec import PretrainedSAE, SAEQualityEval, SaturationClamp

def spec():
    return Experiment(
        name={name!r},
        model=PretrainedModel(name={model!r}{model_extra}),
        saes=({saes},),
        stats_corpus={docs!r},
        sae_quality=SAEQualityEval(n_sequences=8, context_size=32),
        generation=GenerationSettings(max_new_tokens={max_new_tokens}),
        studies=(
            SaturationClamp(
                name="s",
                feature=FeatureByIndex(index=3, keywords=("bridge",)),
                levels=(0.0, 1.0),
                prompts=("the bridge over the bay is",),
                controls=(),
            ),
        ),
    )
"""


def write_spec(
    folder: Path,
    name: str,
    saes: str,
    model: str = "EleutherAI/pythia-14m",
    model_extra: str = "",
    max_new_tokens: int = 4,
) -> Path:
    """A one-study spec file on a real model (the offline judge; statistics on toy documents)."""
    path = folder / f"{name}.py"
    docs = tuple(eval_documents()[:24])
    path.write_text(
        PYTHIA_SPEC.format(
            name=name,
            model=model,
            model_extra=model_extra,
            saes=saes,
            docs=docs,
            max_new_tokens=max_new_tokens,
        )
    )
    return path


@pytest.fixture(scope="session")
def pythia_sae(hub_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SAE trained on pythia-14m's no-processing activations (SAELens' format and metadata)."""
    return sae_for_pythia(tmp_path_factory.mktemp("pythia-sae"), hub_home)


@pytest.fixture(scope="session")
def configs_hub(hub_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture hub with every weights file left out: what validation reads is all there."""
    return configs_only(hub_home, tmp_path_factory.mktemp("configs-only"))


def local_sae(folder: Path, **metadata: object) -> Path:
    """A SAELens-format SAE folder whose config says what ``metadata`` says; its weights file is
    junk, so a check that read it would fail otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    d_in = int(metadata.pop("d_in", 768))  # type: ignore[call-overload]
    cfg = {
        "architecture": "standard",
        "d_in": d_in,
        "d_sae": 64,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "metadata": {
            "sae_lens_version": "6.5.1",
            "model_name": "gpt2",
            "hook_name": "blocks.4.hook_resid_pre",
            "prepend_bos": True,
            "context_size": 128,
            **metadata,
        },
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    (folder / "sae_weights.safetensors").write_bytes(b"not weights")
    return folder


def test_the_fit_gate_passes_as_trained_and_refuses_the_other_processing(
    offline_hub: Path,
    pythia_sae: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    sae = f"LocalSAE(path={str(pythia_sae)!r})"
    spec = write_spec(tmp_path, "fit_as_trained", sae)
    assert main(["run", str(spec), "--no-mlflow"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("fit gate for"))
    assert line.endswith("passes") and "explained variance 0.9" in line, line
    assert "from_pretrained_no_processing()" in out
    report = next((tmp_path / "reports").glob("fit_as_trained-*.md")).read_text()
    assert "Fit gate" in report and "passes" in report

    wrong = write_spec(tmp_path, "fit_default", sae, model_extra=", processing='default'")
    assert main(["run", str(wrong), "--no-mlflow"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()[-1]
    assert "does not fit the model as loaded" in err and ": refused" in err
    assert "processing: the spec sets processing='default'" in err
    gate = next(x for x in captured.out.splitlines() if x.startswith("fit gate for"))
    ev = float(gate.split("explained variance ")[1].split()[0])
    assert ev < 0.5, gate
    store = RunStore.open("latest-any", Path("runs"))
    assert store.experiment().name == "fit_default"
    assert not list(store.records("generation")), "the gate refuses before any intervention"
    assert list(store.records("sae_quality")), "the measurement behind the refusal is kept"


def test_prepend_bos_and_context_size_are_applied_as_the_sae_was_trained(
    offline_hub: Path, pythia_sae: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SAE trained without BOS on 16-token contexts: the loaded model stops prepending BOS
    (statistics, quality and generation alike) and SAE quality cuts 16-token sequences."""
    from harness.execute.worker import Warm
    from harness.spec.loading import load_spec

    monkeypatch.chdir(tmp_path)
    sae = tmp_path / "no_bos"
    shutil.copytree(pythia_sae, sae)
    cfg = json.loads((sae / "cfg.json").read_text())
    cfg["metadata"].update(prepend_bos=False, context_size=16)
    (sae / "cfg.json").write_text(json.dumps(cfg))
    spec = write_spec(tmp_path, "no_bos", f"LocalSAE(path={str(sae)!r})")
    spec.write_text(
        spec.read_text()
        .replace("n_sequences=8, context_size=32", "n_sequences=4")
        .replace("        studies=(", "        fit_gate=None,\n        studies=(")
    )
    exp = load_spec(spec)
    warm = Warm(exp, "cpu", lambda _: None)
    assert warm.model.cfg.default_prepend_bos is False
    assert warm.loading is not None and warm.loading["prepend_bos"] is False
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    [quality] = RunStore.open("latest", Path("runs")).records("sae_quality")
    assert quality["context_size"] == 16


@pytest.mark.parametrize(
    ("saes", "model", "expected"),
    [
        (  # an SAE of another model
            "PretrainedSAE(release='gpt2-small-res-jb', sae_id='blocks.4.hook_resid_pre')",
            "EleutherAI/pythia-14m",
            "saes.0: SAE 'gpt2-small-res-jb/blocks.4.hook_resid_pre' was trained on "
            "'gpt2-small' but the spec's model is 'EleutherAI/pythia-14m'",
        ),
        (  # a hook the model does not have
            "PretrainedSAE(release='gpt2-small-res-jb', sae_id='blocks.4.hook_resid_pre', "
            "hook='blocks.40.hook_resid_pre')",
            "gpt2",
            "saes.0.hook: SAE 'gpt2-small-res-jb/blocks.4.hook_resid_pre' reads hook point "
            "'blocks.40.hook_resid_pre', which gpt2 does not have (the model has 12 layers",
        ),
        (  # the wrong width at the hook
            "PretrainedSAE(release='gpt2-small-res-jb', sae_id='blocks.4.hook_resid_pre', "
            "hook='blocks.4.mlp.hook_post')",
            "gpt2",
            "has d_in=768 but gpt2 is 3072 wide at 'blocks.4.mlp.hook_post'",
        ),
    ],
)
def test_configs_refuse_a_mismatched_pair_before_any_weights_load(
    configs_hub: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    saes: str,
    model: str,
    expected: str,
) -> None:
    """On a hub with no weights files at all, the refusal is the same one line (exit 2)."""
    use_hub(monkeypatch, configs_hub)
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, "mismatch", saes, model=model)
    assert main(["run", str(spec), "--no-mlflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "runs").exists()


def test_sae_metadata_the_harness_cannot_honour_is_refused_in_one_line(
    configs_hub: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_hub(monkeypatch, configs_hub)
    monkeypatch.chdir(tmp_path)
    cases = {
        "model_class_name": (
            {"model_class_name": "AutoModelForCausalLM"},
            "saes.0.model_class_name: SAE",
            "HookedProxyLM",
        ),
        "hook_head_index": ({"hook_head_index": 3}, "saes.0.hook_head_index:", "one attention"),
        "seqpos_slice": ({"seqpos_slice": [1, None]}, "saes.0.seqpos_slice:", "every position"),
        "model_name": ({"model_name": "gemma-2-2b"}, "saes.0:", "trained on 'gemma-2-2b'"),
        "d_in": ({"d_in": 512}, "saes.0:", "has d_in=512 but gpt2 is 768 wide"),
    }
    for name, (meta, field, words) in cases.items():
        folder = local_sae(tmp_path / name, **meta)
        spec = write_spec(tmp_path, name, f"LocalSAE(path={str(folder)!r})", model="gpt2")
        assert main(["validate", str(spec)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and field in err[0] and words in err[0], (name, err)
    # two SAEs trained on differently processed models: never mixed silently
    a = local_sae(tmp_path / "a", model_from_pretrained_kwargs={"center_writing_weights": True})
    b = local_sae(tmp_path / "b")
    spec = write_spec(
        tmp_path, "mixed", f"LocalSAE(path={str(a)!r}), LocalSAE(path={str(b)!r})", model="gpt2"
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.processing:" in err and "differently processed models" in err
    # ... unless the spec says how to load it
    fixed = write_spec(
        tmp_path,
        "chosen",
        f"LocalSAE(path={str(a)!r}), LocalSAE(path={str(b)!r})",
        model="gpt2",
        model_extra=", processing='no_processing'",
    )
    assert main(["validate", str(fixed)]) == 0
    # two SAEs trained with and without BOS
    c = local_sae(tmp_path / "c", prepend_bos=False)
    spec = write_spec(
        tmp_path, "bos", f"LocalSAE(path={str(b)!r}), LocalSAE(path={str(c)!r})", model="gpt2"
    )
    assert main(["validate", str(spec)]) == 2
    assert "saes: the SAEs disagree on prepend_bos" in capsys.readouterr().err
    # generating past the SAE's training context is allowed, with a warning
    short = local_sae(tmp_path / "short", context_size=2)
    spec = write_spec(tmp_path, "ctx", f"LocalSAE(path={str(short)!r})", model="gpt2")
    with pytest.warns(Warning, match="trained on contexts of 2 tokens"):
        assert main(["validate", str(spec)]) == 0


def test_a_release_by_repository_id_trained_on_a_hugging_face_class_is_refused(
    configs_hub: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Hugging Face repository of SAELens-format SAEs is a release too (as SAELens reads it);
    one trained through HookedProxyLM is refused in one line, from its config alone."""
    use_hub(monkeypatch, configs_hub)
    monkeypatch.chdir(tmp_path)
    saes = f"PretrainedSAE(release={PROXY_REPO!r}, sae_id='transformer.h.4')"
    spec = write_spec(tmp_path, "proxy", saes, model="gpt2")
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "saes.0.model_class_name:" in err[0] and "'AutoModelForCausalLM'" in err[0]
    assert "HookedProxyLM" in err[0]
    # a folder the repository does not have, and a name that is no release nor repository id
    missing = write_spec(
        tmp_path, "missing", f"PretrainedSAE(release={PROXY_REPO!r}, sae_id='x')", model="gpt2"
    )
    assert main(["validate", str(missing)]) == 2
    assert "not in the local Hugging Face cache" in capsys.readouterr().err
    unknown = write_spec(
        tmp_path, "unknown", "PretrainedSAE(release='gpt2-smal-res-jb', sae_id='x')", model="gpt2"
    )
    assert main(["validate", str(unknown)]) == 2
    assert "unknown SAELens release 'gpt2-smal-res-jb'" in capsys.readouterr().err


def test_a_converted_release_is_found_in_the_cache_by_the_file_its_loader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qwen Scope SAEs are single ``layerN.sae.pt`` files that SAELens converts (no cfg.json):
    offline, a cached one reads its config, an uncached one fails in one line."""
    from harness.engine.checkpoints import read_sae_card
    from harness.errors import BackendError
    from harness.spec import PretrainedSAE

    use_hub(monkeypatch, tmp_path)
    ref = PretrainedSAE(release="qwen-scope-3-1.7b-base-w32k-l50", sae_id="layer3")
    with pytest.raises(BackendError, match=r"SAE-Res-Qwen3-1.7B-Base-W32K-L0_50/layer3\.sae\.pt"):
        read_sae_card(ref, 0)
    root = snapshot(tmp_path, "Qwen/SAE-Res-Qwen3-1.7B-Base-W32K-L0_50")
    (root / "layer3.sae.pt").write_bytes(b"weights, never read for the config")
    card = read_sae_card(ref, 0)
    assert (card.d_in, card.d_sae, card.hook) == (2048, 32768, "blocks.3.hook_resid_post")
    assert card.metadata["model_name"] == "Qwen/Qwen3-1.7B-Base"


def test_a_model_that_cannot_fit_in_memory_is_refused_with_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Llama-2-7b's real config in a local folder: in float32 it needs ~50 GiB, not there."""
    use_hub(monkeypatch, tmp_path / "empty-hf")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "llama-2-7b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_2_7B))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"\0" * 64)
    sae = local_sae(tmp_path / "llama-sae", d_in=4096, model_name="meta-llama/Llama-2-7b-hf")
    spec = write_spec(
        tmp_path,
        "llama",
        f"LocalSAE(path={str(sae)!r})",
        model="meta-llama/Llama-2-7b-hf",
        model_extra=f", path={str(folder)!r}",
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    # located at the spec's line that set the model (dtype is its default there)
    assert re.match(
        r"harness: error: \S*llama\.py:\d+: model\.dtype: meta-llama/Llama-2-7b-hf in "
        r"float32 needs",
        err,
    ), err
    assert "GiB is free" in err
    need = float(err.split("needs about ")[1].split(" GiB")[0])
    assert 45 < need < 60, err  # 6.7e9 parameters × 4 bytes × 2 while loading, plus the rest


def test_an_uncached_model_fails_offline_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_hub(monkeypatch, tmp_path / "empty-hf")
    monkeypatch.chdir(tmp_path)
    spec = REPO / "experiments" / "gpt2_lab45.py"
    assert main(["run", str(spec), "--no-mlflow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "harness: error: model.name: model 'gpt2' is not in the local Hugging Face cache "
        "(gpt2/config.json) and HF_HUB_OFFLINE is set"
    ]


def test_a_local_model_folder_runs_with_no_hub_at_all(
    hub_home: Path,
    pythia_sae: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pythia-14m copied out of the cache into a plain folder; the cache is empty."""
    folder = tmp_path / "pythia-14m"
    shutil.copytree(snapshot(hub_home, "EleutherAI/pythia-14m"), folder)
    use_hub(monkeypatch, tmp_path / "empty-hf")
    monkeypatch.chdir(tmp_path)
    sae = f"LocalSAE(path={str(pythia_sae)!r})"
    spec = write_spec(tmp_path, "local", sae, model_extra=f", path={str(folder)!r}")
    assert main(["run", str(spec), "--no-mlflow"]) == 0
    store = RunStore.open("latest", Path("runs"))
    loading = store.read_json("provenance.json")["model_loading"]
    assert loading["rule"]["method"] == "from_pretrained_no_processing"
    assert loading["revision"].startswith("local:")
    assert len(list(store.records("generation"))) == 3  # unclamped, level 0, level 1
    first = store.run_id
    # the folder is fingerprinted in the run id: other weights are another run
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-4])
    spec.write_text(spec.read_text())
    assert main(["validate", str(spec)]) == 0
    from harness.spec.loading import load_spec

    assert RunStore.dir_for(load_spec(spec), Path("runs")).name != first
    capsys.readouterr()


def test_gpt2_lab45_runs_offline_end_to_end_loaded_as_trained(
    hub_home: Path, tmp_path: Path
) -> None:
    """The acceptance run: HF_HUB_OFFLINE=1, the fixture cache, `harness run` as a user runs it
    (every study, report, MLflow)."""
    env = {
        **os.environ,
        "HF_HOME": str(hub_home),
        "HF_HUB_OFFLINE": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    spec = REPO / "experiments" / "gpt2_lab45.py"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(spec), "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "from_pretrained_no_processing(center_writing_weights=True)" in out
    gate = next(x for x in out.splitlines() if x.startswith("fit gate for"))
    assert gate.endswith("passes"), gate
    store = RunStore.open("latest", tmp_path / "runs")
    prov = store.read_json("provenance.json")
    rule = prov["model_loading"]["rule"]
    assert rule == {
        "method": "from_pretrained_no_processing",
        "kwargs": {"center_writing_weights": True},
        "reason": "as trained: SAELens metadata of 'gpt2-small-res-jb/blocks.4.hook_resid_pre' "
        "(model_from_pretrained_kwargs={'center_writing_weights': True})",
    }
    trained = prov["model_loading"]["saes"]["gpt2-small-res-jb/blocks.4.hook_resid_pre"]
    assert trained["model_name"] == "gpt2-small" and trained["context_size"] == 128
    assert trained["dataset_path"] == "Skylion007/openwebtext"
    assert prov["dtype"] == "float32"
    report = next((tmp_path / "reports").glob("gpt2_lab45-*.md")).read_text()
    report = report.replace("\\_", "_")  # Markdown escapes
    assert "from_pretrained_no_processing(center_writing_weights=True)" in report
    assert "Fit gate" in report
    for study in ("jailbreak_search", "defence", "attack"):
        assert study in report
    assert json.loads((store.dir / "status.json").read_text())["status"] == "finished"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    run = client.get_run(store.read_json("status.json")["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics


LLAMA_2_7B = {
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.31.0.dev0",
    "use_cache": True,
    "vocab_size": 32000,
}


def test_a_real_model_runs_in_bfloat16_on_the_cpu_and_says_so(
    offline_hub: Path,
    pythia_sae: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    sae = f"LocalSAE(path={str(pythia_sae)!r})"
    spec = write_spec(tmp_path, "bf16", sae, model_extra=", dtype='bfloat16'")
    assert main(["run", str(spec), "--no-mlflow"]) == 0
    gate = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("fit gate"))
    assert gate.endswith("passes"), gate
    store = RunStore.open("latest", Path("runs"))
    assert store.read_json("provenance.json")["dtype"] == "bfloat16"
    report = (tmp_path / "reports" / f"{store.run_id}.md").read_text()
    assert "| dtype | bfloat16 |" in report
    assert len(list(store.records("generation"))) == 3


def test_validate_and_plan_need_only_the_config_files(
    configs_hub: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No weights file anywhere in the cache: the spec validates and plans, and the plan says how
    the model will be loaded and what it needs."""
    use_hub(monkeypatch, configs_hub)
    spec = str(REPO / "experiments" / "gpt2_lab45.py")
    assert main(["validate", spec]) == 0
    assert main(["plan", spec]) == 0
    out = capsys.readouterr().out
    assert "model: gpt2 (float32) by HookedTransformer.from_pretrained_no_processing(" in out
    assert "center_writing_weights=True" in out and "memory: about " in out
