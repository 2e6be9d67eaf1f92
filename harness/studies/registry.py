"""The study registry: kind name → :class:`~harness.studies.contract.StudyKind`.

A small explicit dict that refuses duplicates (as SAELens' registry does). Adding a study kind is
one module under ``harness/studies/`` and one line in ``_BUILTIN`` below (or one
:func:`register` call for a kind that lives elsewhere, e.g. in a plugin or a test).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, TypeAdapter

from harness.spec.refs import StudySpec
from harness.store.records import register_record
from harness.studies import (
    ablation,
    attribution,
    contrast,
    neighbourhood,
    patching,
    saturation,
    specificity,
)
from harness.studies.contract import StudyKind

__all__ = [
    "kind_of",
    "kinds",
    "register",
    "regress_metrics",
    "unregister",
    "validate_study",
]

QUALITY_METRICS_GATED = ("explained_variance", "ce_loss_score", "kl_div_score", "mse", "l0")

_REGISTRY: dict[str, StudyKind[Any]] = {}
_ADAPTER: list[TypeAdapter[Any]] = []


def register(kind: StudyKind[Any]) -> StudyKind[Any]:
    """Add a study kind; refuses a second kind of the same name."""
    if kind.kind in _REGISTRY:
        raise ValueError(f"study kind {kind.kind!r} is already registered")
    if kind.spec.model_fields["kind"].default != kind.kind:
        raise ValueError(f"{kind.spec.__name__}.kind must default to {kind.kind!r}")
    for model in kind.records:
        register_record(model)
    _REGISTRY[kind.kind] = kind
    _ADAPTER.clear()
    return kind


def unregister(name: str) -> None:
    """Remove a study kind (tests that register a throw-away kind clean up with this)."""
    del _REGISTRY[name]
    _ADAPTER.clear()


def kinds() -> list[StudyKind[Any]]:
    """Every registered kind, in registration order."""
    return list(_REGISTRY.values())


def kind_of(study: StudySpec | str) -> StudyKind[Any]:
    """The kind of a study (or of a kind name)."""
    name = study if isinstance(study, str) else study.kind
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown study kind {name!r}; registered: {sorted(_REGISTRY)}") from None


def _adapter() -> TypeAdapter[Any]:
    if not _ADAPTER:
        models: tuple[Any, ...] = tuple(k.spec for k in _REGISTRY.values())
        union: Any = models[0]
        for m in models[1:]:
            union = union | m
        if len(models) > 1:
            from typing import Annotated

            union = Annotated[union, Field(discriminator="kind")]
        _ADAPTER.append(TypeAdapter(union))
    return _ADAPTER[0]


def validate_study(value: Any) -> StudySpec:
    """A study spec of a registered kind, from a spec model or its dict/JSON form."""
    if isinstance(value, StudySpec) and type(value) in {k.spec for k in _REGISTRY.values()}:
        return value
    if isinstance(value, StudySpec):
        value = value.model_dump()
    result: StudySpec = _adapter().validate_python(value)
    return result


def regress_metrics() -> set[str]:
    """Metrics a regression tolerance may name: SAE quality and every kind's item metrics."""
    return set(QUALITY_METRICS_GATED) | {h.metric for k in _REGISTRY.values() for h in k.metrics}


# One line per built-in kind.
_BUILTIN = (
    saturation.KIND,
    ablation.KIND,
    specificity.KIND,
    attribution.KIND,
    contrast.KIND,
    patching.KIND,
    neighbourhood.KIND,
)
for _kind in _BUILTIN:
    register(_kind)
