"""Final review of session 15: serve's summary labels its energy scope as plan and sweeps do
(cosim.energy_scope.energy_scope_label), also where the device file gives static power (the key was missing)."""
from cosim.energy_scope import FULL, energy_scope_label
from cosim.serving import serve


def test_serve_summary_says_its_energy_scope_as_plan_and_sweeps_do():
    kw = dict(qps=2, requests=8, prompt_len=128, output_len=8, seed=1)
    r = serve("llama3_8b", "h100_sxm", **kw)  # h100_sxm.yaml gives static power: dynamic + static
    assert r.summary["energy_scope"] == FULL == energy_scope_label("", r.summary["energy_j"])
