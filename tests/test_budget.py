"""A budget before paid calls: the plan's estimate is printed and refused before compute when
over the limit; a run whose spend reaches the limit stops cleanly and resumes without paying
twice (against the loopback Anthropic server, through the real SDK)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.judge.testing import FakeAnthropic, FaultPlan
from harness.store import RunStore
from tests.test_robustness import ANTHROPIC, _spec


@pytest.fixture
def paid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("HARNESS_JUDGE_CACHE", str(tmp_path / "judge-cache.sqlite"))
    with FakeAnthropic(FaultPlan()) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        yield server


def test_a_plan_over_the_budget_is_refused_before_any_compute(
    paid: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, ANTHROPIC)
    assert main(["run", str(spec), "--quiet", "--no-mlflow", "--max-cost", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "judge budget: about 12 call(s)" in err[0] and "limit $0.00" in err[0], err
    assert "refused before any compute" in err[0] and "--max-cost" in err[0], err
    assert not list(tmp_path.glob("runs/*/records.jsonl")), "nothing computed"
    assert paid.state.message_calls == 0

    spec.write_text(
        spec.read_text().replace(
            '"kind": "anthropic",', '"kind": "anthropic", "max_cost_usd": 0.001,'
        )
    )
    assert main(["run", str(spec), "--quiet", "--no-mlflow"]) == 2  # the spec's own limit
    assert "over the limit" in capsys.readouterr().err
    assert main(["run", str(spec), "--quiet", "--no-mlflow", "--max-cost", "5"]) == 0
    out = capsys.readouterr().out
    assert "judge budget: about 12 call(s)" in out and "limit $5.00" in out
    assert paid.state.message_calls == 12


def test_a_run_that_reaches_its_budget_stops_cleanly_and_resumes_without_paying_twice(
    paid: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, ANTHROPIC)
    args = ["run", str(spec), "--quiet", "--no-mlflow", "--batch-size", "2"]
    assert main([*args, "--max-cost", "0.005", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "judge budget reached" in err[0], err
    store = RunStore.open("latest-any", Path("runs"))
    assert store.status()["status"] == "stopped"
    first = [j for j in store.judgements() if j["score"] is not None]
    spent = sum(j["cost_usd"] for j in store.records("judgement"))
    assert 0 < len(first) < 12 and spent <= 0.005, (len(first), spent)
    assert len(list(store.records("generation"))) == 12, "the generations are all stored"
    calls = paid.state.message_calls

    assert main([*args, "--max-cost", "1"]) == 0
    out = capsys.readouterr().out
    assert f"about {12 - len(first)} call(s)" in out  # what is already scored is not estimated
    final = list(RunStore(store.dir).judgements())
    assert len(final) == 12 and all(j["score"] is not None for j in final)
    # identical texts share one cached verdict, so fewer calls than items; none paid twice
    assert 0 < paid.state.message_calls - calls <= 12 - len(first)
    paid_for: dict[str, int] = {}
    for j in RunStore(store.dir).records("judgement"):
        paid_for[j["of"]] = paid_for.get(j["of"], 0) + j["api_calls"]
    assert max(paid_for.values()) == 1 and sum(paid_for.values()) == paid.state.message_calls
    assert RunStore(store.dir).status()["status"] == "finished"
