"""The NVLS small-chunk regime line of the bundled NVSwitch systems (efficiency.intra_node.nvls.simple_small),
chosen on ND H200 v5 fit data (validation/nvls_regime_rules_s7.md, cosim.calibrate.nvls_regime_fit), and the
session-7 score of the bundled dgx_h100 against every published single-node curve."""


import pytest
from hypothesis import given, settings, strategies as st

from cosim.calibrate.calibration_fit import single_line
from hwmodels.collective_calibration import CollectiveCalibration
from hwmodels.collectives import collective_cost, is_regime_line
from hwmodels.spec import HardwareError
from hwmodels.system import load_system
from tests.system_edit import write_system

H100 = load_system("dgx_h100")
ONE_LINE = single_line(H100)
B_SMALL = 0.423 * 450e9 * (1 - 0.35 / 8)  # bytes/s of the small line at 8 ranks
B_LARGE = 0.618 * 450e9 * (1 - 0.35 / 8)


def test_small_line_by_hand():
    # 8 ranks, 1 MiB, NVLS forced: base 3.6 + fixed 25.4 + 2 x 0.47 alpha + 1 MiB / (0.423 x 450 GB/s x (1 - 0.35/8))
    c = collective_cost("allreduce", 1 << 20, 8, 1, H100, "analytical", "nvls")
    assert c.algorithm == "nvls/simple_small"
    assert c.time_s == pytest.approx(29.94e-6 + (1 << 20) / B_SMALL, rel=1e-12)  # 35.70 us
    assert c.time_s * 1e6 == pytest.approx(35.70, abs=0.01)
    one = collective_cost("allreduce", 1 << 20, 8, 1, ONE_LINE, "analytical", "nvls")
    assert one.algorithm == "nvls/simple" and one.time_s * 1e6 == pytest.approx(79.56 + (1 << 20) / B_LARGE * 1e6)


def test_the_crossover_is_where_the_two_lines_meet():
    # 29.94 + S / B_small = 79.56 + S / B_large  ->  S* = 49.62 us / (1 / B_small - 1 / B_large), about 28.6 MB
    s_star = 49.62e-6 / (1 / B_SMALL - 1 / B_LARGE)
    assert s_star / 1e6 == pytest.approx(28.63, abs=0.01)
    below = collective_cost("allreduce", 0.9 * s_star, 8, 1, H100, "analytical", "nvls")
    above = collective_cost("allreduce", 1.1 * s_star, 8, 1, H100, "analytical", "nvls")
    assert (below.algorithm, above.algorithm) == ("nvls/simple_small", "nvls/simple")


def test_fit_chooses_the_regime_line_and_the_files_carry_it():
    from cosim.calibrate.nvls_regime_fit import choose_regime, fit_regime, small_line_s, with_small_line, yaml_entry
    # fitted under the launch term of its session (8.35 + 3.72 n; session 9 re-chose it, and re-running this fit under
    # the new term gives 24.5 us / 0.416, not adopted: docs/multi-device.md 5.1.8)
    from cosim.calibrate.launch_refit_s9 import S4B_TERM, with_term
    fits = {f.law: f for f in fit_regime(with_term(load_system("dgx_h200"), S4B_TERM))}
    assert (fits["N0"].val_within15, fits["N1"].val_within15, fits["N1"].val_points) == (3, 5, 10)
    best = choose_regime(list(fits.values()))
    assert best.law == "N1" and round(best.fixed_s * 1e6, 1) == 25.4 and best.bw == pytest.approx(0.423)
    for name in ("dgx_h100", "dgx_h200"):
        sysm = load_system(name)
        nvls = sysm.collectives["efficiency"]["intra_node"]["nvls"]
        assert nvls["simple_small"] == yaml_entry(best, sysm)
        # yaml_entry reads the rank law from the file it is compared with: pin it by hand (the large line's 0.35)
        assert nvls["simple_small"]["rank_coeff"] == 0.35 and nvls["simple"]["rank_coeff"] == 0.35
    # the fit's closed form is the model's own price of the line
    alt = with_small_line(ONE_LINE, 25.4e-6, 0.423)
    assert collective_cost("allreduce", 4 << 20, 8, 1, alt, "analytical", "nvls").time_s == \
        pytest.approx(float(small_line_s(ONE_LINE, 4 << 20, 8, 25.4e-6, 0.423)), rel=1e-12)


def test_a_calibrated_algorithm_is_priced_on_its_base_line():
    cal = CollectiveCalibration("node.txt", "V", "one_process_per_gpu", {"nvls": 30e-6}, None)
    for S in (1 << 20, 1 << 24):
        c = collective_cost("allreduce", S, 8, 1, H100, "analytical", "nvls", calibration=cal)
        assert c.algorithm == "nvls/simple" and not is_regime_line(c.algorithm)


@settings(max_examples=50, deadline=None)
@given(log2_size=st.integers(10, 30), ranks=st.integers(3, 8),  # 2 ranks: NCCL sets up no NVLS (test_collective_dtype_nvls)
       launch=st.sampled_from(["one_process_per_gpu", "single_process", "graph"]))
def test_a_regime_line_only_ever_lowers_the_nvls_price(log2_size, ranks, launch):
    a = collective_cost("allreduce", 2 ** log2_size, ranks, 1, H100, "analytical", "nvls", launch=launch)
    b = collective_cost("allreduce", 2 ** log2_size, ranks, 1, ONE_LINE, "analytical", "nvls", launch=launch)
    assert a.time_s <= b.time_s * (1 + 1e-12)
    if a.algorithm == "nvls/simple":  # the large line won: the same price as the one-line model
        assert a.time_s == b.time_s


def _write(tmp_path, mutate):
    return write_system(tmp_path, lambda c: mutate(c["efficiency"]["intra_node"]["nvls"]))


def test_bad_regime_entries_name_the_field(tmp_path):
    def bad_key(n):
        n["simple-small"] = n.pop("simple_small")
    with pytest.raises(HardwareError, match=r"collectives\.efficiency\.intra_node\.nvls: got .*<protocol>_<regime>"):
        load_system(_write(tmp_path, bad_key))

    def bad_bw(n):
        n["simple_small"]["bw"] = 2.5
    with pytest.raises(HardwareError, match=r"collectives\.efficiency\.intra_node\.nvls\.simple_small\.bw: got 2\.5"):
        load_system(_write(tmp_path, bad_bw))


def test_session7_default_score_pinned():
    # benchmarks/results/collective_default_s7.md (rules validation/collective_default_rules_s7.md)
    from cosim.calibrate.collective_default_s7 import default_rows, empty_sizes, feasibility
    from cosim.calibrate.collective_holdout_s4b import session4b_systems, session8_systems, summary
    # priced as session 7 scored it: its launch term (8.35 + 3.72 n, re-chosen in session 9)
    n1 = [r for r in default_rows(session8_systems()) if r.gpu.startswith("H100")]
    n0 = [r for r in default_rows(session4b_systems()) if r.gpu.startswith("H100")]
    assert (summary(n1)["within"], summary(n0)["within"], summary(n1)["points"]) == (96, 87, 107)
    az1 = [r for r in n1 if r.source == "azure_nd_h100_v5"]
    az0 = [r for r in n0 if r.source == "azure_nd_h100_v5"]
    assert (summary(az1)["within"], summary(az0)["within"], len(az1)) == (16, 7, 21)
    # every ND H100 v5 miss of the bundled default is the launch floor (38.11 us) at 1 - 16 KB
    assert sorted(r.size_bytes for r in az1 if abs(r.err_pct) > 15) == [1024, 2048, 4096, 8192, 16384]
    assert all(r.model_us == pytest.approx(38.11) for r in az1 if abs(r.err_pct) > 15)
    assert [s for _, s in empty_sizes(feasibility(n1))] == [1024, 2048, 4096, 524288]
    assert empty_sizes(feasibility(n1, lambda r: r.forced or "unforced")) == []


def test_protocol_crossovers_model_vs_nccl_tuner():
    from cosim.calibrate.protocol_crossovers import model_crossovers, tuner_crossovers
    # NCCL 2.29.2's printed table, 4 x H100 ring: LL 10.2 us / 94.0 GB/s, LL128 25.4 / 220.8, Simple 28.8 / 240.0;
    # LL = LL128 at (25.4 - 10.2) / (1/94000 - 1/220800) B = 2.488 MB, LL128 = Simple at 3.4 / (1/220800 - 1/240000)
    (s1, a1, b1), (s2, a2, b2) = tuner_crossovers()
    assert (a1, b1, a2, b2) == ("ring/ll", "ring/ll128", "ring/ll128", "ring/simple")
    assert s1 == pytest.approx(15.2 / (1 / 94000 - 1 / 220800)) and s2 == pytest.approx(3.4 / (1 / 220800 - 1 / 240000))
    m4 = model_crossovers(H100, "allreduce", 4)
    assert [(a, b) for _, a, b in m4] == [("ring/ll", "ring/ll128"), ("ring/ll128", "ring/simple"),
                                          ("ring/simple", "nvls/simple")]
    assert m4[1][0] == pytest.approx(s2, rel=0.06)  # LL128 -> Simple within 5 % of NCCL's tuner (9.84 vs 9.38 MB)
    # LL -> LL128 where 3.6 + 6 x 0.9119 + 1.5 S / 141 GB/s = 3.6 + 6 x 1.712 + 1.5 S / (0.7138 x 450 GB/s): 0.804 MB, 3x
    # below NCCL's 2.49 MB (session 12's LL line: NCCL's 141 GB/s; the LL128 line keeps its fitted 1.712 us per step)
    ll128 = 0.7138 * 450e9
    assert m4[0][0] == pytest.approx(6 * (1.712 - 0.9119) * 1e-6 / (1.5 * (1 / 141e9 - 1 / ll128)), rel=0.01)
    (sn, an, bn), = model_crossovers(H100, "allreduce", 8, "nvls")
    assert (an, bn) == ("nvls/simple_small", "nvls/simple") and sn == pytest.approx(28.64e6, rel=0.002)
