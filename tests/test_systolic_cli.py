"""`cosim systolic` subcommand."""

from cosim.cli import main


def test_gemm_scalesim(capsys):
    assert main(["systolic", "gemm", "1", "4096", "4096", "--array", "128x128", "--compat", "scalesim"]) == 0
    out = capsys.readouterr().out
    assert "compute_cycles" in out and out.split("compute_cycles")[1].split()[0] == "139199"


def test_ratios_are_percent_and_names_carry_units(capsys):
    """Was `mapping_efficiency 0.78125` (os) beside `100.0` (ws) with no unit: both percent, now named so.
    os, 1x4096 by 4096x4096 on 128x128: 1 row used of 128 in each of 32 column folds = 1/128 = 0.78125 %;
    ws maps K x N = 4096 x 4096 on the array: every PE used, 100 %."""
    def fields(argv):
        assert main(["systolic"] + argv) == 0
        return dict(ln.split(None, 1) for ln in capsys.readouterr().out.splitlines())
    os_ = fields(["gemm", "1", "4096", "4096", "--dataflow", "os"])
    ws = fields(["gemm", "1", "4096", "4096", "--dataflow", "ws"])
    assert float(os_["mapping_efficiency_pct"]) == 100 / 128 and float(ws["mapping_efficiency_pct"]) == 100.0
    assert "mapping_efficiency" not in os_ and "ifmap_sram_reads_elements" in os_
    # pipeline 100x200x300 on 32x32: DRAM reads 100x300 + 300x200 = 90,000 B and writes 100x200 = 20,000 B
    # at 1 B per element (printed), achieved (90,000 + 20,000) B / total_cycles
    p = fields(["pipeline", "100", "200", "300", "--array", "32x32", "--bandwidth", "16"])
    assert float(p["dram_read_bytes"]) == 90000 and float(p["dram_write_bytes"]) == 20000
    assert float(p["achieved_bandwidth_B_per_cycle"]) == 110000 / float(p["total_cycles"])
    assert p["element_bytes"].startswith("ifmap 1 B, filter 1 B, ofmap 1 B")


def test_area_sums(capsys):
    assert main(["systolic", "area", "tpu_v4_like_128"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "note: area of one device (tpu_v4_like_128)"
    lines = dict(l.split()[:2] for l in out if not l.startswith("note:"))
    parts = sum(float(v) for k, v in lines.items() if k != "total")
    assert abs(parts - float(lines["total"])) < 0.05


def test_bad_input_is_an_error_not_a_traceback(capsys):
    assert main(["systolic", "gemm", "1", "2", "3", "--dataflow", "rs"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["systolic", "conv", "1", "2", "--array", "8x8"]) == 2
    assert main(["systolic", "gemm", "1", "2", "3", "--array", "8by8"]) == 2
