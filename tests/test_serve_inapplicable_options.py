"""`cosim serve` (and an experiment's `serve:` block) refuses an option the run would ignore: one `error:` line
naming the option, its value and what it applies to. Defaults are never refused (only what the user set)."""
import pytest

from cosim.cli import main
from cosim.experiment import load_experiment
from cosim.serving.config import ServeConfig
from workloads.io import InputError

_BASE = ["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--requests", "4", "--prompt-len", "16",
         "--output-len", "2"]


@pytest.mark.parametrize("extra, named, why", [
    (["--qps", "5", "--burstiness", "3"], "burstiness (CLI --burstiness): got 3.0", "arrival is 'poisson'"),
    (["--qps", "5", "--prefill-replicas", "2"], "prefill_replicas (CLI --prefill-replicas): got 2",
     "scheduler is 'continuous'"),
    (["--qps", "5", "--decode-replicas", "3"], "decode_replicas (CLI --decode-replicas): got 3",
     "scheduler is 'continuous'"),
    (["--qps", "5", "--acceptance", "0.8"], "--acceptance: got 0.8", "no draft"),
    (["--qps", "5", "--draft-len", "3"], "--draft-len: got 3", "no draft"),
])
def test_cli_refuses_an_option_the_run_ignores(capsys, extra, named, why):
    assert main(_BASE + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: serve: ") and named in err[0] and why in err[0], err


def test_cli_refuses_qps_with_a_trace(capsys):
    argv = ["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--trace", "sharegpt_synth", "--qps", "50"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "qps (CLI --qps): got 50.0, which this run ignores (trace 'sharegpt_synth' is given)" in err


def test_defaults_and_applicable_options_pass():
    ServeConfig(model="m", hw="h", qps=5)  # every default
    ServeConfig(model="m", hw="h", qps=5, arrival="gamma", burstiness=3.0)
    ServeConfig(model="m", hw="h", qps=5, scheduler="disaggregated", prefill_replicas=2, decode_replicas=3)
    ServeConfig(model="m", hw="h", trace="sharegpt_synth", requests=10)
    ServeConfig(model="m", hw="h", qps=5, burstiness=1.0)  # the default value: nothing would change


def test_an_experiment_serve_block_refuses_the_same(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("model: llama3_8b\nhw: h100_sxm\nserve: {qps: 5, requests: 4, decode_replicas: 2}\n")
    with pytest.raises(InputError, match=r"serve: decode_replicas \(CLI --decode-replicas\): got 2, which this "
                                         r"run ignores \(scheduler is 'continuous'\)"):
        load_experiment(str(exp))
    exp.write_text("model: llama3_8b\nhw: h100_sxm\nserve: {trace: sharegpt_synth, qps: 50}\n")
    with pytest.raises(InputError, match=r"qps \(CLI --qps\): got 50"):
        load_experiment(str(exp))
