"""Session 12b: NVLS eligibility by element type and group size (NCCL spec facts, not fits).

NCCL's NVLS reduces only int32/uint32/int64/uint64/half/bfloat16 (sum, min-max) and float/double (sum)
(src/include/device.h ncclNvlsSupported), and never sets NVLS up for a single-node communicator of 2 GPUs or fewer
(src/transport/nvls.cc ncclNvlsInit). Numbers below are the bundled dgx_h100 lines (collectives.efficiency)."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim.calibrate.collective_holdout_s4b import score_file
from cosim.calibrate.nccl_table import PUB
from hwmodels.collectives import candidate_lines, collective_cost, element_type, estimate_collective
from hwmodels.nccl import dtype_from_harness, nccl_type
from hwmodels.spec import HardwareError
from hwmodels.system import load_system
from workloads.ops import Op, TensorSpec

H100 = load_system("dgx_h100")
MB512 = 512 * 2 ** 20


def _ring_simple_us(n, S):
    # ring simple: base 3.6 us + 2 (n-1) x 2.325 us + 2 (n-1)/n S / (0.7759 x 450 GB/s)
    return 3.6 + 2 * (n - 1) * 2.325 + 2 * (n - 1) / n * S / (0.7759 * 450e9) * 1e6


def _nvls_us(n, S):
    # NVLS simple: base 3.6 us + fixed 75.02 us + 2 x 0.47 us + S / (0.618 x 450 GB/s x (1 - 0.35 / n))
    return 3.6 + 75.02 + 2 * 0.47 + S / (0.618 * 450e9 * (1 - 0.35 / n)) * 1e6


def test_int8_512mb_allreduce_is_priced_on_the_ring_fp16_on_nvls():
    i8 = collective_cost("allreduce", MB512, 8, 1, H100, "analytical", dtype="int8")
    f16 = collective_cost("allreduce", MB512, 8, 1, H100, "analytical", dtype="fp16")
    assert i8.algorithm == "ring/simple"
    assert i8.time_s * 1e6 == pytest.approx(_ring_simple_us(8, MB512), rel=1e-9)  # 2727.0 us
    assert i8.time_s * 1e6 == pytest.approx(2727.0, abs=0.1)
    assert any("NVLS not offered to an all-reduce of int8" in n and "ncclNvlsSupported" in n for n in i8.notes)
    assert f16.algorithm == "nvls/simple"
    assert f16.time_s * 1e6 == pytest.approx(_nvls_us(8, MB512), rel=1e-9)  # 2098.4 us
    assert not any("NVLS not offered" in n for n in f16.notes)


def test_default_dtype_prices_as_before():
    for S in (1024, 2 ** 20, 2 ** 26, MB512):
        base = collective_cost("allreduce", S, 8, 1, H100, "analytical")
        for d in ("fp16", "half", "bf16", "bfloat16", "fp32", "float", "double", "int32"):
            c = collective_cost("allreduce", S, 8, 1, H100, "analytical", dtype=d)
            assert (c.time_s, c.algorithm) == (base.time_s, base.algorithm)


@pytest.mark.parametrize("fmt", ["int8", "uint8", "fp8_e4m3", "fp8_e5m2", "mxfp8_e4m3", "mxint8", "nvfp4", "int4",
                                 "f8e4m3", "char"])
def test_no_nvls_for_types_nvls_cannot_reduce(fmt):
    labels = [l for l, _, _ in candidate_lines("allreduce", MB512, 8, 1, H100, dtype=fmt)]
    assert labels and not any(l.startswith("nvls") for l in labels)


def test_allgather_and_alltoall_ignore_the_type():
    for k in ("allgather", "alltoall", "reducescatter"):
        a = collective_cost(k, MB512, 8, 1, H100, "analytical", dtype="int8")
        b = collective_cost(k, MB512, 8, 1, H100, "analytical")
        assert (a.time_s, a.algorithm, a.notes) == (b.time_s, b.algorithm, b.notes)


def test_forced_nvls_on_int8_is_an_error_and_bad_dtype_names_itself():
    with pytest.raises(HardwareError, match="int8"):
        collective_cost("allreduce", MB512, 8, 1, H100, "analytical", "nvls", dtype="int8")
    with pytest.raises(HardwareError, match="'int9'"):
        collective_cost("allreduce", MB512, 8, 1, H100, "analytical", dtype="int9")


def test_two_rank_group_never_gets_nvls():
    labels = [l for l, _, _ in candidate_lines("allreduce", MB512, 2, 1, H100)]
    assert labels and not any(l.startswith("nvls") for l in labels)
    c = collective_cost("allreduce", MB512, 2, 1, H100, "analytical")
    assert c.algorithm == "ring/simple" and any("group of 2 ranks" in n for n in c.notes)
    assert any(l.startswith("nvls") for l, _, _ in candidate_lines("allreduce", MB512, 4, 1, H100))
    with pytest.raises(HardwareError, match="nvls"):
        collective_cost("allreduce", MB512, 2, 1, H100, "analytical", "nvls")


def test_trace_op_format_reaches_the_price():
    def op(fmt):
        return Op("ar", "allreduce", {"ranks": 8}, (TensorSpec("x", (MB512,), fmt),), (TensorSpec("y", (MB512,), fmt),))
    i8, b16 = estimate_collective(op("int8"), H100, "analytical"), estimate_collective(op("bf16"), H100, "analytical")
    assert i8.details["algorithm"] == "ring/simple" and b16.details["algorithm"] == "nvls/simple"
    assert i8.latency_s * 1e6 == pytest.approx(_ring_simple_us(8, MB512), rel=1e-9)


def test_dtype_from_table_text():
    assert dtype_from_harness("H100; NCCL 2.29.2; nccl_dtype int8; out-of-place") == "int8"
    assert dtype_from_harness("all_reduce_perf -b 8 -e 1G -f 2 -g 8 -d half") == "fp16"
    assert dtype_from_harness("all_reduce_perf -b 8 -e 1G -f 2 -g 8") is None
    with pytest.raises(ValueError, match="'quux'"):
        dtype_from_harness("all_reduce_perf -d quux")
    assert nccl_type("bfloat16") == "bf16" and element_type("mxfp8_e4m3") == "mxfp8_e4m3"


def test_s12_table_int8_rows_on_the_ring_half_rows_unchanged():
    rows = [r for r in score_file(PUB / "nccl_heldout_session12.csv")
            if r.gpu == "H100 SXM" and r.n_gpus == 8 and r.collective == "allreduce" and r.size_bytes == MB512]
    by = {r.source.rsplit("_", 1)[1]: r for r in rows}
    assert by["int8"].algorithm == "ring/simple" and by["half"].algorithm == "nvls/simple"
    assert by["int8"].model_us == pytest.approx(_ring_simple_us(8, MB512), rel=1e-9)
    assert by["half"].model_us == pytest.approx(_nvls_us(8, MB512), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(S=st.integers(0, 2 ** 31), n=st.sampled_from([2, 3, 4, 6, 8]), d=st.sampled_from(["int8", "fp8_e5m2", "mx6"]))
def test_removing_nvls_never_makes_a_collective_cheaper(S, n, d):
    a = collective_cost("allreduce", S, n, 1, H100, "analytical", dtype=d)
    b = collective_cost("allreduce", S, n, 1, H100, "analytical", dtype="bf16")
    assert a.time_s >= b.time_s
    assert (a.time_s == b.time_s) or b.algorithm.startswith("nvls")


def test_element_type_turns_only_unknown_format_errors_into_the_dtype_error(monkeypatch):
    """It caught every exception around the format lookup, so a bug inside it read as a bad dtype."""
    import hwmodels.collectives as c
    from hwmodels.spec import HardwareError
    with pytest.raises(HardwareError, match=r"collective dtype: got 'nofmt'; expected a format name"):
        c.element_type("nofmt")

    def broken(name):
        raise RuntimeError("a bug in the registry")
    monkeypatch.setattr(c, "get_format", broken)
    with pytest.raises(RuntimeError, match="a bug in the registry"):
        c.element_type("bf16x")
