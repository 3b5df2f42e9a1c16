"""Session-16 review leftovers (model import, KV / compression recipes, non-GPU hwmodels): one source of
truth for each rule, checked by hand."""

import pytest

from workloads.io import InputError


@pytest.mark.parametrize("key", ["num_local_experts", "num_experts", "n_routed_experts"])
def test_one_expert_count_reading_serves_the_checks_and_the_ignore_note(key):
    """workloads.hf_layers.hf_experts is the one reading: the MoE checks refuse a missing num_experts_per_tok and
    hf_quant's ignore note finds the router under each of the three keys."""
    from workloads.hf_layers import hf_experts
    from workloads.hf_quant import ignore_note
    from workloads.models import _refuse_missing_defaults
    assert hf_experts({key: 8}) == 8 and not hf_experts({"num_experts": 0})
    with pytest.raises(InputError, match="x.json: num_experts_per_tok: got missing"):
        _refuse_missing_defaults({"model_type": "mixtral", "num_key_value_heads": 8, key: 8}, "x.json", "")
    qc = {"quant_method": "compressed-tensors", "ignore": ["re:.*mlp.gate$"]}
    assert "the MoE router" in ignore_note(qc, "x.json", "int4_g128", {"num_hidden_layers": 2, key: 8})
    assert "matches no modelled module" in ignore_note(qc, "x.json", "int4_g128", {"num_hidden_layers": 2})
