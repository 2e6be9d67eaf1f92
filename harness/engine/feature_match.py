"""Features matched across checkpoints by decoder cosine (loads the SAEs, not the model).

The engine side of ``harness compare``: the command computes the matches and hands them to the
comparison report, which imports no model code.
"""

from __future__ import annotations

from typing import Any

from harness.analysis.compare import Checkpoint, FeatureMatch

__all__ = ["match_features"]


def match_features(checkpoints: list[Checkpoint]) -> tuple[list[FeatureMatch], str]:
    """Per study, each checkpoint's feature and its decoder cosine to the reference's feature,
    plus the reference feature's best decoder match in each checkpoint. Loads the SAEs (not the
    model); when they cannot be loaded, the features are listed without cosines and the second
    value says why."""
    studies: dict[str, list[dict[str, Any] | None]] = {}
    for i, c in enumerate(checkpoints):
        recs = c.run.records
        if "kind" not in recs:
            continue
        # interventions store a feature record; specificity studies name it in each context
        chosen = recs[recs["kind"].isin(["feature", "context"]) & (recs["sae"] == c.sae)]
        for r in chosen.to_dict("records"):
            slots = studies.setdefault(r["study"], [None] * len(checkpoints))
            if slots[i] is None:
                if r["kind"] == "context":
                    r = {**r, "label": _study_label(c, r["study"])}
                slots[i] = r
    if not studies:
        return [], ""
    saes, note = _load_saes(checkpoints)
    out = []
    for study, recs in studies.items():
        feats = [int(r["feature"]) if r else None for r in recs]
        labels = [r.get("label") if r else None for r in recs]
        cos: list[float | None] = [None] * len(checkpoints)
        best: list[tuple[int, float] | None] = [None] * len(checkpoints)
        ref_feature = feats[0]
        if saes is not None and ref_feature is not None:
            for i, f in enumerate(feats):
                if f is None or saes[i].sae.cfg.d_in != saes[0].sae.cfg.d_in:
                    continue
                cos[i] = _cosine(saes[0], ref_feature, saes[i], f)
                from harness.engine.features import match_by_decoder

                top = match_by_decoder(saes[0], ref_feature, saes[i], top=1)[0]
                best[i] = (top.index, top.score)
        out.append(FeatureMatch(study, feats, labels, cos, best))
    return out, note


def _study_label(c: Checkpoint, study: str) -> str | None:
    for s in c.run.experiment.studies:
        if s.name == study:
            ref = getattr(s, "feature", None)
            return getattr(ref, "label", None)
    return None


def _cosine(a: Any, i: int, b: Any, j: int) -> float:
    u = a.sae.W_dec[i].detach().float()
    v = b.sae.W_dec[j].detach().float()
    return float((u @ v) / (u.norm() * v.norm() + 1e-12))


def _load_saes(checkpoints: list[Checkpoint]) -> tuple[list[Any] | None, str]:
    from harness.engine.backend import load_sae
    from harness.errors import HarnessError

    try:
        return [load_sae(c.ref(), c.sae) for c in checkpoints], ""
    except HarnessError as exc:
        return None, f"decoder cosines unavailable: {exc}"
