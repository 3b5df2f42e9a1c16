"""`simulate --parallel`: the one-device trace's totals are labelled as such, without tokens/s or J/token a
reader could take for the system's (they read "34.8 ms per pass, 918.7 tokens/s" beside the layout's
"step 44.7 ms ... 1,430.4 tokens/s", and "74.2 mJ/token" beside the system's 594 mJ/token)."""
from cosim.cli import main


def _lines(capsys, parallel):
    assert main(["simulate", "--model", "llama3_70b", "--hw", "dgx_h100", "--batch", "64", "--seq", "8192",
                 "--parallel", parallel]) == 0
    return capsys.readouterr().out.splitlines()


def test_tp2_pp4_trace_total_says_one_device_one_microbatch_all_stages(capsys):
    out = _lines(capsys, "tp=2,pp=4,microbatches=2")
    assert not any(ln.startswith("total: ") for ln in out)
    tot = next(ln for ln in out if ln.startswith("trace total "))
    assert tot.startswith("trace total (one device's trace: one tp shard, one micro-batch of 32 through all 4 "
                          "stages; not the system, see layout:): 34.8 ms,"), tot
    assert "tokens/s" not in tot and "/token" not in tot
    lay = next(ln for ln in out if ln.startswith("layout: "))
    assert lay.startswith("layout: step 44.7 ms for batch 64 (2 micro-batches, bubble 60.0%), 1,430.4 tokens/s")


def test_tp8_trace_total_has_no_per_token_energy(capsys):
    out = _lines(capsys, "tp=8")
    tot = next(ln for ln in out if ln.startswith("trace total "))
    assert "one micro-batch of 64 through the model" in tot and "/token" not in tot
    assert any(ln.startswith("layout: ") and "J/token)" in ln for ln in out)


def test_a_single_device_keeps_its_total_line(capsys):
    assert main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--batch", "8", "--seq", "1024"]) == 0
    assert any(ln.startswith("total: ") and "tokens/s" in ln for ln in capsys.readouterr().out.splitlines())
