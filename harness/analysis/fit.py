"""The fit gate's verdict: does an SAE reconstruct the activations of the model as loaded well
enough to be steered? From the stored SAE-quality record and the spec alone (no model code), so
the run that refuses and the report that explains say the same thing."""

from __future__ import annotations

from typing import Any

from harness.spec import Experiment, FitGate, PretrainedModel, sae_label

__all__ = ["fit_verdict", "likely_causes"]


def fit_verdict(values: dict[str, float], gate: FitGate) -> tuple[bool, str]:
    """Whether ``values`` (:func:`harness.analysis.quality.quality_values`) pass ``gate``, and
    one line with the figures against the floors."""
    ev = values["explained_variance"]
    parts = [f"explained variance {ev:.3f} (floor {gate.min_explained_variance})"]
    ok = ev >= gate.min_explained_variance
    gap = values["ce_loss_with_ablation"] - values["ce_loss_without_sae"]
    score = values["ce_loss_score"]
    if gap >= gate.min_ablation_gap:
        parts.append(f"CE-loss score {score:.3f} (floor {gate.min_ce_loss_score})")
        ok = ok and score >= gate.min_ce_loss_score
    else:
        parts.append(
            f"CE-loss score not judged (zero-ablation raises CE by {gap:.3f} nats/token, below "
            f"{gate.min_ablation_gap})"
        )
    return ok, ", ".join(parts) + (": passes" if ok else ": refused")


def likely_causes(exp: Experiment, label: str, loading: dict[str, Any] | None) -> str:
    """What most likely makes SAE ``label`` misfit: the spec's processing override, a hook other
    than the one it was trained at, BOS handling; the candidates in that order."""
    i = [sae_label(r) for r in exp.saes].index(label)
    ref = exp.saes[i]
    if not isinstance(exp.model, PretrainedModel) or loading is None:
        return "the SAE was not trained on this model's activations at this hook"
    trained = loading.get("saes", {}).get(label, {})
    rule = loading["rule"]
    causes = []
    wanted = trained.get("model_from_pretrained_kwargs", {})
    how = f"HookedTransformer.{rule['method']}({rule['kwargs'] or ''})"
    if exp.model.processing != "as_trained":
        causes.append(
            f"processing: the spec sets processing={exp.model.processing!r}, so the model was "
            f"loaded by {how}, but the SAE was trained with from_pretrained_no_processing"
            f"({wanted or ''}); remove the override"
        )
    else:
        causes.append(f"processing: the model was loaded by {how}, as the SAE's metadata says")
    hook, at = trained.get("hook_name"), trained.get("hook", ref.hook)
    if hook and at and hook != at:
        causes.append(f"hook: read at {at!r}, trained at {hook!r}")
    bos = trained.get("prepend_bos")
    causes.append(f"BOS: trained with prepend_bos={bos}" if bos is not None else "BOS handling")
    return "; ".join(causes)
