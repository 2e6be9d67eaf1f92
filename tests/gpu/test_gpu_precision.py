"""tests/test_precision.py on CUDA (opt-in: `nox -- -m gpu`): bfloat16 and float16 models, a
no-op intervention equal to plain generation, clamps from the SAE's half weights."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.test_precision import (  # noqa: F401  (collected here, with the CUDA fixture below)
    DTYPES,
    test_a_clamp_moves_along_the_features_decoder_row_and_keeps_the_error_term,
    test_a_no_op_intervention_generates_exactly_the_plain_continuations,
    test_clamping_to_the_current_value_returns_the_activations_bit_for_bit,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module", params=DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def half(request, toy_model, toy_saes):  # type: ignore[no-untyped-def]
    dtype = request.param
    model = copy.deepcopy(toy_model).to("cuda").to(dtype)
    sae = copy.deepcopy(toy_saes["relu-256"].sae).to("cuda").to(dtype)
    return dtype, model, sae
