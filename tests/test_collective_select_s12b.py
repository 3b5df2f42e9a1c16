"""Session 12b: the small-group / all-to-all selection (rules: validation/published/collective_selection_session12b.md)."""

import numpy as np
import pytest

from cosim.calibrate.collective_select_s12b import (A2A, RING, _nonneg_lstsq, candidate_system, choose, fit, loto,
                                                    seen_rows, summarise)
from hwmodels.collectives import collective_cost
from hwmodels.spec import HardwareError
from hwmodels.system import load_system
from hwmodels.units import parse_quantity
from tests.system_edit import write_system

H100 = load_system("dgx_h100")
S = 512 * 2 ** 20


def test_alltoall_has_its_own_line_send_recv_keeps_the_old_one():
    for n in (2, 4, 8):
        want = 3.6 + (n - 1) * 1.052 + (n - 1) / n * S / (0.5727 * 450e9) * 1e6
        c = collective_cost("alltoall", S, n, 1, H100, "analytical")
        assert c.algorithm == "direct" and c.time_s * 1e6 == pytest.approx(want, rel=1e-9)
    assert collective_cost("alltoall", S, 2, 1, H100, "analytical").time_s * 1e6 == pytest.approx(1046.25, abs=0.01)
    sr = collective_cost("sendrecv", S, 2, 1, H100, "analytical")
    assert sr.time_s * 1e6 == pytest.approx(3.6 + 1.028 + S / (0.8185 * 450e9) * 1e6, rel=1e-9)


def test_bundled_files_carry_the_refit_alltoall_line():
    rows = seen_rows()
    base = {n: load_system(n) for n in ("dgx_h100", "dgx_h200")}
    final = fit("A1", rows, base)
    for name, s in base.items():
        line = s.collectives["efficiency"]["intra_node"]["direct"]["alltoall"]
        assert line["bw"] == round(final["bw"], 4)
        assert parse_quantity(line["latency"], "time", name, "latency") == pytest.approx(final["latency_s"], abs=5e-10)


def test_alltoall_family_choice_follows_the_rules():
    res = summarise(loto(seen_rows(), cands=A2A))
    chosen, why = choose(res, A2A)
    # A1 and A2 both qualify; A2's S is within 1.0 point of A1's, so the tie goes to fewer fitted parameters
    assert chosen == "A1" and why["A2"].startswith("qualifies")
    assert abs(res["A2"]["S"] - res["A1"]["S"]) <= 0.01


@pytest.mark.slow
def test_ring_family_nothing_qualifies():
    res = summarise(loto(seen_rows(), cands=RING))
    chosen, why = choose(res, RING)
    assert chosen is None and all("ncb_4xh100" in why[c] for c in ("R1", "R2"))


def test_group_coeff_scales_small_groups_only():
    s = candidate_system("R1", H100, {"g": 0.5})
    for n, factor in ((2, 0.8), (4, (1 - 0.125) / (1 - 0.0625)), (8, 1.0)):
        want = 3.6 + (n - 1) * 2.325 + (n - 1) / n * S / (0.7759 * 450e9 * factor) * 1e6
        assert collective_cost("allgather", S, n, 1, s, "analytical").time_s * 1e6 == pytest.approx(want, rel=1e-9)
    assert (collective_cost("allreduce", 2 ** 20, 8, 1, s, "analytical").time_s
            == collective_cost("allreduce", 2 ** 20, 8, 1, H100, "analytical").time_s)


def test_bad_group_coeff_and_alltoall_entries_name_the_field(tmp_path):
    def bad_g(c):
        c["efficiency"]["intra_node"]["ring"]["simple"]["group_coeff"] = 3
    with pytest.raises(HardwareError, match=r"ring\.simple\.group_coeff: got 3"):
        load_system(write_system(tmp_path, bad_g))

    def bad_a2a(c):
        c["efficiency"]["intra_node"]["direct"]["alltoall"]["bw"] = -1
    with pytest.raises(HardwareError, match=r"direct\.alltoall\.bw: got -1"):
        load_system(write_system(tmp_path, bad_a2a))


def test_nonneg_lstsq_drops_a_negative_column():
    A = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    y = np.array([3.0, 2.0, 1.0])  # unconstrained: slope -1 -> the constrained best keeps the intercept only
    z = _nonneg_lstsq(A, y)
    assert z[1] == 0 and z[0] == pytest.approx(2.0)


def test_a_rows_element_type_is_the_one_score_file_prices_it_with(tmp_path, monkeypatch):
    """seen_rows took the element type from the source name's suffix (_half, _int8) while score_file reads the row's
    note / harness (dtype_from_harness): one derivation now. A table whose rows state int8 under a _half name
    reads int8 (the suffix said fp16)."""
    import shutil
    import cosim.calibrate.collective_select_s12b as mod
    for name in ("allreduce_h100_curve_heldout.csv", "nccl_fit_session4.csv", "vidur_h100_dgx_allreduce.csv"):
        shutil.copy(mod.PUB / name, tmp_path / name)
    text = (mod.PUB / mod.S12).read_text()
    (tmp_path / mod.S12).write_text(text.replace("-d half", "-d int8").replace("nccl_dtype half", "nccl_dtype int8"))
    monkeypatch.setattr(mod, "PUB", tmp_path)
    rows = [r for r in mod.seen_rows() if r.machine.startswith("aic_")]
    assert rows and {r.dtype for r in rows} == {"int8"}
    monkeypatch.undo()
    assert {r.dtype for r in mod.seen_rows() if r.machine.startswith("aic_")} == {"fp16", "int8"}


def test_group_and_rank_coeff_are_refused_where_the_model_would_ignore_them(tmp_path):
    """group_coeff scales only a ring fitted on a whole switched node (hwmodels.collectives._flat), and
    rank_coeff only NVLS: set anywhere else they were read and silently ignored."""
    def on_nvls(c):
        c["efficiency"]["intra_node"]["nvls"]["simple"]["group_coeff"] = 0.5
    with pytest.raises(HardwareError, match=r"nvls\.simple\.group_coeff: got 0\.5; expected no group_coeff on "
                                            r"intra_node\.nvls: it scales ring lines of the intra_node link only"):
        load_system(write_system(tmp_path, on_nvls))

    def on_ring(c):
        c["efficiency"]["intra_node"]["ring"]["ll"]["rank_coeff"] = 0.35
    with pytest.raises(HardwareError, match=r"ring\.ll\.rank_coeff: got 0\.35; expected no rank_coeff on ring"):
        load_system(write_system(tmp_path, on_ring))

    def on_inter(c):
        c["efficiency"]["inter_node"] = {"ring": {"bw": 0.9, "group_coeff": 0.5}}
    with pytest.raises(HardwareError, match=r"inter_node\.ring\.group_coeff: got 0\.5; expected no group_coeff on "
                                            r"inter_node\.ring"):
        load_system(write_system(tmp_path, on_inter))

    # a ring-topology board (no switch): the factor would never be applied
    import yaml
    from tests.system_edit import SYSTEMS
    doc = yaml.safe_load((SYSTEMS / "mx_systolic_board_4.yaml").read_text())
    doc["collectives"] = {"efficiency": {"intra_node": {"ring": {"bw": 0.9, "group_coeff": 0.5}}}}
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(HardwareError, match=r"ring\.group_coeff: got 0\.5; expected no group_coeff here: .* and "
                                            r"links\.intra_node is a ring"):
        load_system(str(tmp_path / "board.yaml"))

    # where it applies it loads and prices (the 2-rank ring is slower by (1 - 0.5/8) / (1 - 0.5/2) = 1.25)
    def ok(c):
        for proto in ("ll", "ll128", "simple"):
            c["efficiency"]["intra_node"]["ring"][proto]["group_coeff"] = 0.5
    s = load_system(write_system(tmp_path, ok))
    S = 256 << 20
    t_g = collective_cost("allgather", S, 2, 1, s, "analytical", algorithm="ring").time_s
    t_0 = collective_cost("allgather", S, 2, 1, H100, "analytical", algorithm="ring").time_s
    assert t_g > t_0
