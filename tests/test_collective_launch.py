"""The launch-mode option of the collective model (hwmodels.launch): one process per GPU (default,
unchanged numbers) vs one process driving the node's GPUs (nccl-tests -g N), fitted on fit data only."""

import pytest
from hypothesis import given, settings, strategies as st

from hwmodels.collectives import collective_cost
from hwmodels.spec import HardwareError
from hwmodels.system import load_system
from tests.system_edit import write_system

H100 = load_system("dgx_h100")


def test_single_process_floor_by_hand():
    # dgx_h100 collectives.launch.single_process (session 9 re-fit): floor 17.50 us + 2.08 us per driven GPU
    c8 = collective_cost("allreduce", 1024, 8, 1, H100, "analytical", launch="single_process")
    assert c8.time_s * 1e6 == pytest.approx(17.50 + 2.08 * 8)  # 34.14 us (node floors at 8 GPUs: 26.1 - 35.7 us)
    assert c8.launch == "single_process" and c8.algorithm == "ring/ll"
    assert any("floor 17.50 us + 2.080 us x 8 GPUs = 34.14 us" in n for n in c8.notes)
    c4 = collective_cost("allreduce", 1024, 4, 1, H100, "analytical", launch="single_process")
    assert c4.time_s * 1e6 == pytest.approx(17.50 + 2.08 * 4)  # 25.82 us (nccl-collectives-bench -g 4: 23.2 - 25.9 us)


def test_default_is_one_process_per_gpu_and_unchanged():
    d = collective_cost("allreduce", 1024, 8, 1, H100, "analytical")
    assert d.launch == "one_process_per_gpu" and d.notes == ()
    assert d.time_s * 1e6 == pytest.approx(16.38, abs=0.01)  # DeepEP #303's 1 KB all-reduce, the fit point


def test_large_messages_are_above_the_floor():
    a = collective_cost("allreduce", 1 << 30, 8, 1, H100, "analytical")
    b = collective_cost("allreduce", 1 << 30, 8, 1, H100, "analytical", launch="single_process")
    assert a.time_s == b.time_s and a.algorithm == b.algorithm


def test_roofline_carries_no_harness_term_and_says_so():
    a = collective_cost("allreduce", 1024, 8, 1, H100, "roofline")
    b = collective_cost("allreduce", 1024, 8, 1, H100, "roofline", launch="single_process")
    assert a.time_s == b.time_s and any("not added at the roofline" in n for n in b.notes)


def test_one_rank_per_node_has_no_term():
    c = collective_cost("allreduce", 1024, 1, 1, H100, "analytical", launch="single_process")
    assert c.time_s == 0.0 and c.launch == "single_process"


def test_bad_launch_mode_is_one_clear_error():
    with pytest.raises(HardwareError, match=r"collective launch: got 'threads'; expected one of"):
        collective_cost("allreduce", 1024, 8, 1, H100, "analytical", launch="threads")


_write = write_system


def test_a_system_without_the_term_refuses_single_process(tmp_path):
    s = load_system(_write(tmp_path, lambda c: c.pop("launch")))
    assert collective_cost("allreduce", 1024, 8, 1, s, "analytical").time_s > 0  # default still works
    with pytest.raises(HardwareError, match=r"collectives\.launch\.single_process: missing"):
        collective_cost("allreduce", 1024, 8, 1, s, "analytical", launch="single_process")


def test_bad_launch_fields_name_the_field(tmp_path):
    def bad_law(c):
        c["launch"]["single_process"]["law"] = "sometimes"
    with pytest.raises(HardwareError, match=r"collectives\.launch\.single_process\.law: got 'sometimes'"):
        load_system(_write(tmp_path, bad_law))

    def missing_b(c):
        del c["launch"]["single_process"]["b"]
    with pytest.raises(HardwareError, match=r"collectives\.launch\.single_process: got .*expected a mapping with law"):
        load_system(_write(tmp_path, missing_b))


def test_session4b_chose_the_floor_law_and_its_constants_are_the_s4b_term():
    # the law (floor a + b n) was chosen in session 4b; its constants were re-chosen in session 9 (next test)
    from cosim.calibrate.launch_fit import choose, fit_laws
    from cosim.calibrate.launch_refit_s9 import S4B_TERM
    fits = fit_laws(H100)
    best = choose(fits)
    assert best.law == "F2"  # floor a + b n: validation median 6.8 % vs 10.2-11.7 % for the others
    assert all(best.val_median_pct < f.val_median_pct for f in fits if f is not best)
    assert (best.a_s, best.b_s) == pytest.approx((S4B_TERM.a_s, S4B_TERM.b_s), abs=0.005e-6)


def test_system_files_carry_the_session9_refit():
    # the rule chosen leave-one-node-out (rows_lsq, tests/test_launch_refit_s9.py) fitted on every fit row
    from cosim.calibrate.launch_refit_s9 import fit_rows, rule_term, yaml_entry
    entry = yaml_entry(rule_term("rows_lsq", fit_rows()))
    assert entry == {"law": "floor", "a": "17.50 us", "b": "2.08 us"}
    for name in ("dgx_h100", "dgx_h200"):
        assert load_system(name).collectives["launch"]["single_process"] == entry


_LAW = {"single_process": lambda t, n: max(t, 17.50e-6 + 2.08e-6 * n),  # floor: host enqueue of n kernels
        "graph": lambda t, n: t + 6.60e-6}  # additive CUDA-graph node term (tests/test_collective_graph_launch.py)


@pytest.mark.parametrize("mode", sorted(_LAW))
@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["allreduce", "allgather", "reducescatter", "alltoall"]),
       log2_size=st.integers(10, 30), ranks=st.integers(2, 8))
def test_each_launch_mode_is_its_law_on_the_default(mode, kind, log2_size, ranks):
    a = collective_cost(kind, 2 ** log2_size, ranks, 1, H100, "analytical")
    b = collective_cost(kind, 2 ** log2_size, ranks, 1, H100, "analytical", launch=mode)
    assert b.time_s == pytest.approx(_LAW[mode](a.time_s, ranks), rel=1e-12)
    assert b.algorithm == a.algorithm
