"""Results that cannot be silently wrong: one writer per run, stale runs recognised, unscored
judgements asked again, every bad spec one line and exit 2 before a model loads, I/O failures
one line, damaged records set aside, control characters stripped, strict verdicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.judge.parse import parse_verdict
from harness.judge.rubric import load_rubric
from harness.store import RunStore
from tests.conftest import REPO

SPEC = """
from harness import Experiment, FeatureByIndex, SaturationClamp, ToySAE

def spec():
    return Experiment(
        name="robust",
        saes=(ToySAE(name="relu-256"),),
        studies=(SaturationClamp(name="sweep", feature=FEATURE, levels=(0, 5), prompts=PROMPTS,
                                 controls=()),),
        sae_quality=None,
        {extra}
    )

FEATURE = FeatureByIndex(index=9, keywords=("bridge",))
PROMPTS = ("the chef added salt to the", "a cold wind blows and the",
           "the rocket launched toward the", "she chopped the onions and put the")
"""


ANTHROPIC = 'judge={"kind": "anthropic", "extra_rubrics": (), "max_unscored_fraction": 1.0},'


def _spec(tmp_path: Path, extra: str = "", name: str = "spec.py") -> Path:
    path = tmp_path / name
    path.write_text(SPEC.replace("{extra}", extra))
    return path


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _poll(condition, timeout: float = 180.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _keys(store: RunStore) -> list[tuple[str, str]]:
    lines = store.records_path.read_text().splitlines()
    return [(json.loads(x)["kind"], json.loads(x)["key"]) for x in lines]


# ---------------------------------------------------------------- one writer per run


def test_a_second_writer_is_refused_or_waits(tmp_path: Path) -> None:
    """While a process holds the run's writer lock, `harness run` of the same spec refuses with
    one line (exit 2), and with --wait queues behind it and then completes."""
    from harness.spec.loading import load_spec

    spec = _spec(tmp_path)
    holder = RunStore.for_experiment(load_spec(spec), tmp_path / "runs")
    with holder.writer_lock():
        refused = _cli(["run", str(spec), "--quiet", "--no-mlflow"], tmp_path)
        _, err = refused.communicate(timeout=300)
        assert refused.returncode == 2, err
        assert err.count("\n") == 1 and f"pid {os.getpid()}" in err and "--wait" in err
        waiting = _cli(["run", str(spec), "--quiet", "--no-mlflow", "--wait"], tmp_path)
        assert waiting.stdout is not None
        assert "waiting for pid" in waiting.stdout.readline()
        assert waiting.poll() is None  # still queued while the lock is held
    _out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, err
    assert not holder.is_live()


def test_two_concurrent_runs_never_store_anything_twice(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    procs = [_cli(["run", str(spec), "--quiet", "--no-mlflow", "--wait"], tmp_path) for _ in "ab"]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    store = RunStore(next((tmp_path / "runs").glob("robust-*")))
    keys = _keys(store)
    assert len(keys) == len(set(keys))  # the second writer found everything done
    rows = store.read_json("summary.json")
    concept = [r for r in rows if r["metric"] == "concept_score" and r["condition"] == "5x"]
    assert concept[0]["n"] == 4


# ---------------------------------------------------------------- stale runs


def test_sigkill_leaves_no_mlflow_run_running_after_the_next_start(tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = _spec(tmp_path, "sae_quality=SAEQualityEval(n_sequences=256),")
    spec.write_text(
        spec.read_text()
        .replace("sae_quality=None,\n", "")
        .replace("import Experiment,", "import Experiment, SAEQualityEval,")
        .replace("from harness import", "from harness.spec import")
    )
    proc = _cli(["run", str(spec), "--quiet"], tmp_path, MLFLOW_TRACKING_URI=uri)
    runs = tmp_path / "runs"

    def mlflow_run_started() -> bool:
        for p in runs.glob("robust-*/status.json"):
            try:
                return bool(json.loads(p.read_text()).get("mlflow_run_id"))
            except ValueError:  # replaced while read
                return False
        return False

    _poll(mlflow_run_started)
    status = json.loads(next(runs.glob("robust-*/status.json")).read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert status["status"] == "running"
    listing = _cli(["list"], tmp_path)
    out, _ = listing.communicate(timeout=120)
    assert "killed" in out.splitlines()[1]
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_run(status["mlflow_run_id"]).info.status == "RUNNING"  # SIGKILL's leftover
    again = _cli(["run", str(spec), "--quiet"], tmp_path, MLFLOW_TRACKING_URI=uri)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    stale = client.get_run(status["mlflow_run_id"]).info
    assert stale.status == "KILLED" and stale.end_time is not None
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert [r.info.status for r in client.search_runs(experiments)].count("RUNNING") == 0


# ---------------------------------------------------------------- unscored judgements


def test_unscored_judgements_are_asked_again_and_scored_ones_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.judge.testing import FakeAnthropic, FaultPlan

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    spec = _spec(
        tmp_path, 'judge={"kind": "anthropic", "extra_rubrics": (), "max_unscored_fraction": 1.0},'
    )
    with FakeAnthropic(FaultPlan(fault_rate=0.5, seed=2, kinds=("malformed",))) as faulty:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", faulty.base_url)
        assert main(["run", str(spec), "--quiet", "--no-mlflow", "--judge-retries", "0"]) == 0
    store = RunStore.open("latest", Path("runs"))
    first = list(store.judgements())
    unscored = [j for j in first if j["score"] is None]
    assert 0 < len(unscored) < len(first) == 12
    # a fresh judgement cache: the first run's scored verdicts of identical texts would answer
    # some of the retries for free (which is right, but this test counts requests)
    monkeypatch.setenv("HARNESS_JUDGE_CACHE", str(tmp_path / "fresh-cache.sqlite"))
    with FakeAnthropic(FaultPlan()) as healthy:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", healthy.base_url)
        assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
        # only those, once each at most (identical texts share one cached verdict)
        calls = healthy.state.message_calls
        assert 0 < calls <= len(unscored)
        assert main(["rescore", "latest"]) == 0
        assert healthy.state.message_calls == calls  # all scored now: nothing to ask
    final = list(RunStore(store.dir).judgements())
    assert len(final) == 12 and all(j["score"] is not None for j in final)
    attempts = list(RunStore(store.dir).judgements(every_attempt=True))
    assert len(attempts) == 12 + len(unscored)  # each attempt kept, with its reason
    summary = RunStore(store.dir).read_json("summary.json")
    n = sum(r["n"] for r in summary if r["metric"] == "concept_score")
    assert n == 12  # counted once per item


def test_attempts_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.judge.service import MAX_ATTEMPTS
    from harness.judge.testing import FakeAnthropic, FaultPlan

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    spec = _spec(
        tmp_path, 'judge={"kind": "anthropic", "extra_rubrics": (), "max_unscored_fraction": 1.0},'
    )
    with FakeAnthropic(FaultPlan(fault_rate=1.0, kinds=("malformed",))) as broken:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", broken.base_url)
        for _ in range(MAX_ATTEMPTS + 1):
            assert main(["run", str(spec), "--quiet", "--no-mlflow", "--judge-retries", "0"]) == 0
        # one call per item and attempt (a malformed body is no verdict to re-ask about), and
        # the run after the last attempt asks nothing
        assert broken.state.message_calls == 12 * MAX_ATTEMPTS
    store = RunStore.open("latest", Path("runs"))
    assert all(j["score"] is None for j in store.judgements())
    assert len(list(store.judgements(every_attempt=True))) == 12 * MAX_ATTEMPTS


# ---------------------------------------------------------------- bad specs

BAD = {
    "negative seed": ("seed=-1,", "seed"),
    "huge seed": ("seed=2**80,", "seed"),
    "overflowing level": (None, "levels"),
    "level past the bound": (None, "levels"),
    "repeated prompt": (None, "prompt 2 repeats prompt 0"),
    "position past the prompt": (None, "studies.0.positions"),
    "anthropic judge without a key": ('judge={"kind": "anthropic"},', "judge.kind"),
    "unknown words refused": ('unknown_words="refuse",', "does not know"),
    "instruction in unknown words": (None, "studies.0.control_instruction"),
    "concept label in unknown words": (None, "xylophone"),
    "contrast set in unknown words": ('unknown_words="refuse",', "feature.positive.1"),
}


def _bad_spec(tmp_path: Path, case: str) -> Path:
    extra, _ = BAD[case]
    text = SPEC.replace("{extra}", extra or "")
    if case == "overflowing level":
        text = text.replace("levels=(0, 5)", "levels=(0, 1e30)")
    if case == "level past the bound":
        text = text.replace("levels=(0, 5)", "levels=(0, 5000)")
    if case == "repeated prompt":
        text = text.replace('"the rocket', '"the chef added salt to the", "the rocket')
    if case == "position past the prompt":
        text = text.replace("levels=(0, 5),", "levels=(0, 5), positions=(9,),")
    if case == "unknown words refused":
        text = text.replace("the chef added salt", "the zeppelin added salt")
    if case == "instruction in unknown words":  # the model's prompt-only control reads it
        text = text.replace(
            "controls=()", 'controls=("prompt_only",), control_instruction="Talk about {concept}. "'
        )
    if case == "concept label in unknown words":
        text = text.replace("controls=()", 'controls=("prompt_only",)').replace(
            'keywords=("bridge",)', 'label="xylophone music", keywords=("bridge",)'
        )
    if case == "contrast set in unknown words":
        text = text.replace(
            'FeatureByIndex(index=9, keywords=("bridge",))',
            'FeatureByContrast(positive=("the golden gate", "the ukulele bridge"), '
            'negative=("the chef",), keywords=("bridge",))',
        ).replace("import Experiment,", "import Experiment, FeatureByContrast,")
    path = tmp_path / "bad.py"
    path.write_text(text)
    return path


CHECK = """
import json, sys
from harness.cli import main
command, spec, runs = sys.argv[1:4]
code = main([command, spec, "--runs", runs] if command == "run" else [command, spec])
heavy = ("torch", "transformer_lens", "sae_lens")
print(json.dumps({"code": code, "model_code": any(m in sys.modules for m in heavy)}))
"""


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_spec_is_one_line_exit_2_and_loads_no_model(
    tmp_path: Path, case: str, command: str
) -> None:
    spec = _bad_spec(tmp_path, case)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run(
        [sys.executable, "-c", CHECK, command, str(spec), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        timeout=300,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"code": 2, "model_code": False}, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("harness: error")]
    assert len(errors) == 1 and BAD[case][1] in errors[0], out.stderr
    assert "Traceback" not in out.stderr


SPEC_FILES = {
    "sys.exit at import": ("import sys\nsys.exit(0)\n", "SystemExit(0)"),
    "SystemExit(3) in spec()": ("def spec():\n    raise SystemExit(3)\n", "SystemExit(3)"),
    "KeyboardInterrupt in spec()": (
        "def spec():\n    raise KeyboardInterrupt\n",
        "KeyboardInterrupt",
    ),
    "error in spec()": ("def spec():\n    x = 1\n    return x / 0\n", "bad.py:3"),
}


@pytest.mark.parametrize("case", sorted(SPEC_FILES))
def test_a_spec_file_cannot_exit_or_interrupt_the_harness(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = SPEC_FILES[case]
    (tmp_path / "bad.py").write_text(text)
    for command in ("validate", "run"):
        assert main([command, str(tmp_path / "bad.py")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
        assert "finished items are saved" not in err


def test_unreadable_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "prompts.txt").write_bytes(b"caf\xe9 au lait\n")
    spec = (
        _spec(tmp_path)
        .read_text()
        .replace("prompts=PROMPTS", 'prompts=__import__("harness").PromptFile(path="prompts.txt")')
    )
    (tmp_path / "spec.py").write_text(spec)
    assert main(["validate", str(tmp_path / "spec.py")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    sae = tmp_path / "sae"
    sae.mkdir()
    for cfg, expected in (
        ("{not json", "not valid JSON"),
        ('{"d_in": 64}', "'d_sae' must be a positive integer"),
        ('{"d_in": 64, "d_sae": 256, "architecture": "nope"}', "unknown architecture"),
        ('{"d_in": 64, "d_sae": 256}', "names no hook point"),
        ('{"d_in": 64, "d_sae": 256, "metadata": {"hook_name": "x"}}', "holds no weights"),
    ):
        (sae / "cfg.json").write_text(cfg)
        text = (
            _spec(tmp_path)
            .read_text()
            .replace(
                'ToySAE(name="relu-256")', f'__import__("harness").LocalSAE(path={str(sae)!r})'
            )
        )
        (tmp_path / "local.py").write_text(text)
        assert main(["validate", str(tmp_path / "local.py")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "saes.0" in err, err


# ---------------------------------------------------------------- I/O and damaged records


def test_a_full_disk_is_one_line_and_the_run_is_marked_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path)
    real_append = RunStore.append
    calls = {"n": 0}

    def full(self: RunStore, records):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.records_path))
        return real_append(self, records)

    monkeypatch.setattr(RunStore, "append", full)
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "records.jsonl" in err
    run_dir = next((tmp_path / "runs").glob("robust-*"))
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
    assert not [p for p in run_dir.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(RunStore, "append", real_append)
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0  # and it resumes


def test_a_disk_that_fills_up_leaves_the_run_failed_with_the_path_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk as the OS reports it: every write that needs a new block fails with ENOSPC
    and no file name (appends, temporary files of atomic writes); overwriting blocks a file
    already has still works. The run says `failed` with the reason, the line names the file."""
    import builtins
    import errno

    import harness.store.files as files
    import harness.store.run_store as run_store

    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path)
    real_open = builtins.open
    state = {"appends": 0, "full": False}

    def disk_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        name = str(file)
        if "records.jsonl" in name and "a" in mode and not state["full"]:
            state["appends"] += 1
            state["full"] = state["appends"] > 2
        if state["full"] and ("a" in mode or "w" in mode or "x" in mode):
            raise OSError(errno.ENOSPC, "No space left on device")  # no file name, like write(2)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(run_store, "open", disk_open, raising=False)
    monkeypatch.setattr(files, "open", disk_open, raising=False)
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert "records.jsonl" in err, err
    run_dir = next((tmp_path / "runs").glob("robust-*"))
    status = RunStore(run_dir).status()
    assert status["status"] == "failed" and "No space left" in status["error"], status
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0  # room again: it resumes
    assert RunStore(run_dir).status()["status"] == "finished"


def test_a_damaged_line_is_set_aside_and_its_items_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path)
    other = _spec(tmp_path, "seed=1,", "other.py")
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    store = RunStore.open("latest", Path("runs"))  # the run of `spec`, damaged below
    assert main(["run", str(other), "--quiet", "--no-mlflow"]) == 0
    before = store.read_json("summary.json")
    lines = store.records_path.read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    lines[middle] = lines[middle][: len(lines[middle]) // 2] + "\n"  # a torn line mid-file
    store.records_path.write_text("".join(lines))
    capsys.readouterr()
    assert main(["list"]) == 0  # the other run is still listed
    out = capsys.readouterr().out
    assert out.count("robust-") == 2 and "damaged" in out
    assert main(["report", str(store.dir)]) == 2
    assert f"records.jsonl:{middle + 1}: damaged record line" in capsys.readouterr().err
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    assert "set 1 damaged record line(s) aside" in capsys.readouterr().out
    aside = (store.dir / "records.damaged.jsonl").read_text().splitlines()
    assert json.loads(aside[0])["line"] == middle + 1
    after = RunStore(store.dir).read_json("summary.json")
    assert after == before


def test_a_finished_run_with_a_torn_tail_is_flagged_and_the_rerun_mends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path)
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    store = RunStore.open("latest", Path("runs"))
    before = store.read_json("summary.json")
    data = store.records_path.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    store.records_path.write_bytes(data[: last + (len(data) - last) // 2])  # cut mid-write
    capsys.readouterr()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "records.jsonl ends in a torn line" in out
    assert main(["report", str(store.dir), "--reports", "reports"]) == 0
    captured = capsys.readouterr()
    assert "harness: warning:" in captured.err and "torn line" in captured.err
    report = Path(captured.out.split("report: ")[1].strip()).read_text()
    assert "**Incomplete records:**" in report
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0  # redoes the cut record
    capsys.readouterr()
    assert RunStore(store.dir).torn_tail() == 0
    assert RunStore(store.dir).read_json("summary.json") == before
    assert main(["list"]) == 0 and "torn" not in capsys.readouterr().out


# ---------------------------------------------------------------- text and verdicts


def test_control_characters_never_reach_a_report_or_mlflow() -> None:
    from harness.views.report.markdown_table import cell
    from harness.views.tracking import flatten_params

    hostile = "bridge \x1b[2J\x1b]0;pwned\x07 \x9b31m fog\x00"
    assert not any(ch in cell(hostile) for ch in "\x1b\x07\x9b\x00")
    assert "bridge" in cell(hostile) and "fog" in cell(hostile)
    params = flatten_params({"prompts": [hostile]})
    assert not any(ch in v for v in params.values() for ch in "\x1b\x07\x9b\x00")


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 2", 2),
        ("**Score: 3**", 3),
        ("The text says Score: 3.\nScore: 1", 1),
        ("Score: 2.", 2),
        ("Score: 2.0", None),
        ("Score: 2.5", None),
        ("Score: 2/3", None),
        ("Score: two", None),
        ("Score: 7", None),
        ("underscore: 2", None),
        ("", None),
    ],
)
def test_a_verdict_is_an_integer_on_the_scale_and_nothing_else(
    reply: str, score: int | None
) -> None:
    verdict = parse_verdict(reply, load_rubric("concept_presence"))
    assert verdict.score == score
    assert (verdict.problem is None) == (score is not None)


def test_a_local_sae_retrained_in_place_never_resumes_into_stale_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from harness.toy.world import toy_sae_dir

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "ckpt"
    shutil.copytree(toy_sae_dir("relu-256"), folder)
    spec = _spec(tmp_path)
    spec.write_text(
        spec.read_text().replace(
            'ToySAE(name="relu-256")', f'__import__("harness").LocalSAE(path={str(folder)!r})'
        )
    )
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    [first] = list(Path("runs").glob("robust-*"))
    n_first = len(first.joinpath("records.jsonl").read_text().splitlines())
    weights = load_file(str(folder / "sae_weights.safetensors"))
    weights["W_dec"] = weights["W_dec"] + 0.5 * torch.randn_like(weights["W_dec"])
    save_file(weights, str(folder / "sae_weights.safetensors"))  # "retrained" at the same path
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0
    second = [p for p in Path("runs").glob("robust-*") if p != first]
    assert len(second) == 1  # a run of its own
    assert len(first.joinpath("records.jsonl").read_text().splitlines()) == n_first
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 0  # unchanged weights: resumes
    assert len(list(Path("runs").glob("robust-*"))) == 2


@pytest.mark.parametrize("spec", sorted((REPO / "experiments").glob("toy_*.py")), ids=str)
def test_the_shipped_toy_specs_use_only_words_the_toy_world_knows(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prompts, contrast sets and the prompt-only instruction alike (validate checks them all)."""
    assert main(["validate", str(spec)]) == 0
    err = capsys.readouterr().err
    assert "does not know" not in err and "warning" not in err, err
