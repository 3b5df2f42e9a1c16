"""`cosim systolic` subcommand."""

from cosim.cli import main


def test_gemm_scalesim(capsys):
    assert main(["systolic", "gemm", "1", "4096", "4096", "--array", "128x128", "--compat", "scalesim"]) == 0
    assert "compute_cycles        139199" in capsys.readouterr().out


def test_area_sums(capsys):
    assert main(["systolic", "area", "tpu_v4_like_128"]) == 0
    lines = dict(l.split()[:2] for l in capsys.readouterr().out.splitlines())
    parts = sum(float(v) for k, v in lines.items() if k != "total")
    assert abs(parts - float(lines["total"])) < 0.05


def test_bad_input_is_an_error_not_a_traceback(capsys):
    assert main(["systolic", "gemm", "1", "2", "3", "--dataflow", "rs"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["systolic", "conv", "1", "2", "--array", "8x8"]) == 2
    assert main(["systolic", "gemm", "1", "2", "3", "--array", "8by8"]) == 2
