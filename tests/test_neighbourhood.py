"""Feature neighbourhoods on the toy world: nearest decoder directions within an SAE and across
checkpoints, with frequencies, contexts and the corpus topic each fires on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.studies.neighbourhood_run import context_topic, nearest, split_children, topic_of
from harness.toy.lexicon import topic_lexicon
from tests.conftest import REPO, run_spec


def test_nearest_is_the_highest_decoder_cosine() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(50, 16, generator=g)
    got = nearest(w, 3, w, 5, skip=3)
    cos = torch.nn.functional.cosine_similarity(w, w[3][None], dim=1)
    cos[3] = -2
    want = torch.topk(cos, 5)
    assert [f for f, _ in got] == want.indices.tolist()
    assert [c for _, c in got] == pytest.approx(want.values.tolist(), abs=1e-6)
    assert 3 not in [f for f, _ in got]


def test_split_children_are_the_wider_rows_nearest_to_the_feature() -> None:
    narrow = torch.eye(4)  # four orthogonal directions
    wide = torch.tensor(
        [
            [1.0, 0.2, 0.0, 0.0],  # near 0
            [0.9, -0.3, 0.0, 0.0],  # near 0
            [0.0, 1.0, 0.0, 0.0],  # near 1
            [0.5, 0.5, 0.5, 0.5],  # cosine 0.5 to all: nearest is 0 (first), at the threshold
            [0.0, 0.0, 0.3, 0.1],  # near 2
        ]
    )
    kids = split_children(narrow, 0, wide, 0.6)
    assert [j for j, _ in kids] == [0, 1] and kids[0][1] > kids[1][1]
    assert [j for j, _ in split_children(narrow, 0, wide, 0.5)] == [0, 1, 3]
    assert split_children(narrow, 3, wide, 0.5) == []


def test_topics_come_from_the_corpus_lexicon() -> None:
    lexicon = topic_lexicon()
    assert topic_of(["gate", "bridge", "the"], lexicon) == "golden_gate"
    assert topic_of(["the", "."], lexicon) is None
    assert topic_of(["gate"], None) is None
    # a feature's topic is its contexts', whatever token it fires on
    contexts = [
        "tourists take photos <<of>> the bridge from the shore .",
        "we walked across <<the>> golden gate bridge .",
        "the chef added salt <<to>> the soup .",
    ]
    assert context_topic(contexts, lexicon) == "golden_gate"
    assert context_topic(["<<the>> ."], lexicon) is None


def test_the_golden_gate_feature_has_its_twin_in_the_other_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = run_spec(REPO / "experiments" / "toy_neighbourhood.py")
    recs = {r["sae"]: r for r in store.records("neighbourhood")}
    relu = recs["toy/relu-256"]
    own, *rest = relu["neighbours"]
    assert own["feature"] == relu["feature"] and own["cosine"] is None
    assert own["topic"] == "golden_gate" and own["examples"]
    within = [n for n in rest if n["sae"] == "toy/relu-256"]
    other = [n for n in rest if n["sae"] == "toy/topk-256"]
    assert len(within) == len(other) == 8
    assert len([n for n in rest if n["sae"] == "toy/relu-1024"]) == 8
    for group in (within, other):
        cos = [n["cosine"] for n in group]
        assert cos == sorted(cos, reverse=True)
    # across checkpoints the nearest direction is the same concept: a golden-gate feature
    assert other[0]["cosine"] > 0.5 and other[0]["topic"] == "golden_gate"
    assert all(0 <= n["frequency"] <= 1 for n in rest)
    rows = {(r["sae"], r["condition"], r["metric"]): r for r in store.read_json("summary.json")}
    share = rows[("toy/relu-256", "within", "same_topic_share")]
    assert share["n"] == 8 and 0 <= share["value"] <= 1
    # the neighbours are checked against the base rate of the topic among all the SAE's
    # features: the count is an independent recount, the p-value a hypergeometric tail
    from scipy.stats import hypergeom

    base = relu["background"]["toy/relu-256"]
    assert base["features"] == base["of"] == 256 and sum(base["topics"].values()) == 256
    k = base["topics"]["golden_gate"] - 1  # the feature itself is no neighbour of its own
    hits = sum(n["topic"] == "golden_gate" for n in within)
    rate = rows[("toy/relu-256", "within", "topic_base_rate")]
    assert rate["n"] == 255 and rate["value"] == pytest.approx(k / 255)
    p = rows[("toy/relu-256", "within", "same_topic_p")]["value"]
    assert p == pytest.approx(hypergeom.sf(hits - 1, 255, k, 8))
    assert share["value"] > rate["value"] and p < 0.05  # the bridge topic is enriched nearby
    # splitting: the 1024-wide SAE divides the feature among several features whose nearest
    # direction in relu-256 is the feature's own, and whose contexts differ
    children = relu["splits"]["toy/relu-1024"]
    assert len(children) >= 2 and all(c["cosine"] >= 0.5 for c in children)
    assert len({tuple(c["top_tokens"]) for c in children}) >= 2
    overlap = rows[("toy/relu-256", "split in toy/relu-1024", "top_token_overlap")]
    assert overlap["value"] < 1
    assert "toy/relu-1024" not in recs["toy/relu-1024"]["splits"]  # nothing wider than itself
    report = next(Path("reports").glob("toy_neighbourhood-*.md")).read_text()
    assert "neighbourhood of feature" in report and "golden\\_gate" in report
    assert "### Splitting in toy/relu-1024" in report
