"""Bad recipes fail with a message naming the recipe file, the field, the value and what
was expected — never a traceback from deep inside a rewrite."""

import pytest

from compression_helpers import LLAMA3_8B, trace_for
from workloads.compression import RecipeError, apply_recipe, load_recipe
from workloads.io import InputError


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_unknown_recipe_lists_the_bundled_ones():
    with pytest.raises(RecipeError) as e:
        load_recipe("kivi3")
    msg = str(e.value)
    assert "unknown recipe 'kivi3'" in msg and "kivi2" in msg


def test_unknown_recipe_inside_a_composition():
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
        load_recipe("kivi2+nope")


def test_unknown_method(tmp_path):
    p = write(tmp_path, "name: x\nmethod: kivy\ncitation: c\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(str(p))
    assert str(p) in str(e.value) and "method" in str(e.value) and "'kivy'" in str(e.value) and "kivi" in str(e.value)


def test_negative_budget_names_file_and_field(tmp_path):
    p = write(tmp_path, "name: x\nmethod: h2o\ncitation: c\nparameters: {budget: -5}\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(str(p))
    msg = str(e.value)
    assert str(p) in msg and "parameters.budget" in msg and "-5" in msg and "non-negative" in msg


def test_negative_capacity(tmp_path):
    p = write(tmp_path, "name: x\nmethod: snapkv\ncitation: c\nparameters: {capacity: -1}\n")
    with pytest.raises(RecipeError, match="parameters.capacity: got -1; expected a positive token budget"):
        load_recipe(str(p))


def test_residual_window_not_a_multiple_of_the_group(tmp_path):
    p = write(tmp_path, "name: x\nmethod: kivi\ncitation: c\nparameters: {group_size: 32, residual_length: 100}\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(str(p))
    msg = str(e.value)
    assert str(p) in msg and "parameters.residual_length" in msg and "100" in msg and "multiple of group_size (32)" in msg


def test_group_size_not_dividing_head_dim(tmp_path):
    # loads fine (48 divides 96), but the values' channel groups cannot tile head_dim 128
    p = write(tmp_path, "name: x\nmethod: kivi\ncitation: c\nparameters: {group_size: 48, residual_length: 96}\n")
    r = load_recipe(str(p))
    with pytest.raises(RecipeError) as e:
        r.apply(trace_for(LLAMA3_8B), LLAMA3_8B)
    msg = str(e.value)
    assert str(p) in msg and "parameters.group_size" in msg and "48" in msg and "head dimension 128" in msg


def test_spqr_group_must_divide_k(tmp_path):
    p = write(tmp_path, "name: x\nmethod: spqr\ncitation: c\nparameters: {group_size: 24}\n")
    with pytest.raises(RecipeError, match=r"parameters.group_size: got 24; expected a divisor of the reduction dimension K=4096"):
        apply_recipe(trace_for(LLAMA3_8B), str(p), LLAMA3_8B)


def test_palu_head_group_not_dividing_kv_heads_is_noted(tmp_path):
    """As the accuracy run does: the largest divisor of the KV heads at most head_group_size
    (8 KV heads, 3 asked: groups of 2), with a note (tests/test_recipe_pricing_audit.py)."""
    p = write(tmp_path, "name: x\nmethod: palu\ncitation: c\nparameters: {head_group_size: 3}\n")
    t = apply_recipe(trace_for(LLAMA3_8B), str(p), LLAMA3_8B)
    e = t.meta["recipe_effects"]["x"]
    assert e["groups"] == 4 and e["note"] == "head_group_size 3 does not divide the 8 KV heads; groups of 2 used"


def test_moe_recipe_on_dense_model():
    with pytest.raises(RecipeError, match="expected a MoE model"):
        apply_recipe(trace_for(LLAMA3_8B), "qmoe", LLAMA3_8B)


@pytest.mark.parametrize("text,field", [
    ("name: x\nmethod: kivi\ncitation: c\nparameters: {k_bits: two}\n", "parameters.k_bits"),
    ("name: x\nmethod: kivi\ncitation: c\nparameters: {k_bits: 0}\n", "parameters.k_bits"),
    ("name: x\nmethod: kivi\ncitation: c\nparameters: {bogus: 1}\n", "parameters.bogus"),
    ("name: x\nmethod: kivi\nparameters: {}\n", "citation"),
    ("name: x\nmethod: kv_format\ncitation: c\nparameters: {format: fp7}\n", "parameters.format"),
    ("name: x\nmethod: snapkv\ncitation: c\nparameters: {kernel: 8}\n", "parameters.kernel"),
    ("name: x\nmethod: h2o\ncitation: c\nparameters: {heavy_ratio: 1.5}\n", "parameters.heavy_ratio"),
    ("name: x\nmethod: snapkv\ncitation: c\nparameters: {pooling: median}\n", "parameters.pooling"),
    ("name: x\nmethod: kivi\ncitation: c\nextra: 1\n", "extra"),
    ("- just a list\n", ""),
])
def test_bad_fields(tmp_path, text, field):
    p = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_recipe(str(p))
    assert str(p) in str(e.value)
    assert field in str(e.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(InputError, match="no such recipe file"):
        load_recipe(str(tmp_path / "absent.yaml"))


def test_inline_parameter_overrides():
    r = load_recipe("kivi2(group_size=64, residual_length=64)+h2o(budget=512)")
    kivi, h2o = r.parts
    assert kivi.name == "kivi2(group_size=64,residual_length=64)" and kivi.params["group_size"] == 64
    assert kivi.params["k_bits"] == 2 and kivi.citation == load_recipe("kivi2").citation
    assert h2o.params["budget"] == 512
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=8192), r, LLAMA3_8B)
    assert t2.meta["kv_state"]["capacity"] == 512


def test_inline_override_errors_name_the_field():
    with pytest.raises(RecipeError) as e:
        load_recipe("kivi2(residual_length=100)")
    assert "kivi2.yaml" in str(e.value) and "parameters.residual_length" in str(e.value) and "100" in str(e.value)
    with pytest.raises(RecipeError, match="parameters.budget: got -1"):
        load_recipe("h2o(budget=-1)")
    with pytest.raises(RecipeError, match="expected key=value"):
        load_recipe("h2o(512)")
    with pytest.raises(RecipeError, match="parameters.nope"):
        load_recipe("snapkv(nope=1)")
