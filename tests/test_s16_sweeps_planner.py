"""Session 16 (helper h16b): sweeps, roofline CLI, planner and dse leftovers."""

import dataclasses
import sys

import pytest

from cosim.dse import sweep


def test_system_point_notes_are_each_once_in_order(tmp_path, monkeypatch):
    """_system_point joined simulate's notes as they came: a note simulate said twice was twice in the row's
    notes column (the other row kinds dedupe). Now every row kind goes through evaluate.join_notes."""
    mod = sys.modules["cosim.simulate"]
    real = mod.simulate

    def twice(*a, **k):
        rep = real(*a, **k)
        return dataclasses.replace(rep, notes=("first note", "second note", "first note", "", *rep.notes,
                                               "second note"))

    monkeypatch.setattr(mod, "simulate", twice)
    spec = {"name": "tp", "base": {"model": "llama3_8b", "phase": "decode", "batch": 4, "seq": 1024,
                                   "system": "dgx_h100", "hw": "h100_sxm", "parallel": {"tp": 2}, "level": "roofline"},
            "axes": [{"grid": {"parallel.tp": [2]}}], "output": str(tmp_path / "out")}
    df = sweep(spec, quiet=True, write=False)
    notes = df["notes"].iloc[0].split(" | ")
    assert notes[:2] == ["first note", "second note"] and len(notes) == len(set(notes))


def test_roofline_text_reads_intensity_from_export_row(monkeypatch):
    """cosim roofline's table took each row's intensity through cosim.report.export_row (the files' rule:
    an op without off-chip bytes has no intensity), not a restatement of it: what export_row says, the
    table prints (n/a where it gives NaN)."""
    import math
    import cosim
    from cosim import report
    from cosim.cli.roofline import format_report
    rep = cosim.simulate(cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=128), "h100_sxm")
    real = report.export_row

    def op_rows():
        table = format_report(rep, top=3).splitlines()
        start = next(i for i, ln in enumerate(table) if ln.startswith("op ")) + 2
        return table[start:start + 3]

    assert not any(" n/a " in ln for ln in op_rows())  # the top ops (GEMMs) move bytes: a number
    monkeypatch.setattr(report, "export_row", lambda r, floats=True: {**real(r, floats), "intensity": math.nan})
    assert all(" n/a " in ln for ln in op_rows())


def test_plan_figure_reads_the_energy_scope_vocabulary_not_a_prefix():
    """plan_figure (and the sweep's mixed-scope warning) picked dynamic-only rows by the words their label
    starts with; now by the vocabulary (cosim.energy_scope.is_dynamic_only: a device's scope, neither FULL nor
    UNKNOWN), so a device scope worded otherwise is still labelled and UNKNOWN never is."""
    from cosim.energy_scope import FULL, UNKNOWN, is_dynamic_only
    from cosim.plan import plan, plan_figure
    from cosim.plots import pyplot
    assert is_dynamic_only("dynamic only (no static power in x.yaml)") and is_dynamic_only("static term unknown")
    assert not any(is_dynamic_only(x) for x in (FULL, UNKNOWN, "", None, float("nan")))
    res = plan("llama3_8b", "dgx_h100", phase="decode", batch=1, seq=1024, max_devices=2)
    scope = "static power not given in x.yaml"
    rows = [dataclasses.replace(r, energy_scope=scope if i == 0 else UNKNOWN) for i, r in enumerate(res.rows)]
    fig = plan_figure(dataclasses.replace(res, rows=rows))
    assert fig.axes[0].get_xlabel() == f"step_latency_s; bar labels: energy per token, {scope}"
    pyplot().close(fig)


def test_sweep_and_run_make_the_same_checkpoint_call(monkeypatch):
    """dse/evaluate._checkpoint_accuracy_for repeated experiment's evaluate_accuracy call with SimpleNamespace
    stand-ins for the config; both now call cosim.experiment.run_checkpoint with an AccuracyConfig and the
    formats: the same settings give the same call (only where the token count was set differs)."""
    from cosim import experiment
    from cosim.dse import evaluate
    from cosim.experiment_config import AccuracyConfig

    class Stop(Exception):
        pass

    calls = []

    def spy(acc, weights, acts, kv, recipe, tokens_option):
        calls.append((acc, weights, acts, kv, recipe, tokens_option))
        raise Stop

    monkeypatch.setattr(experiment, "run_checkpoint", spy)
    acc = AccuracyConfig(tokens=40, checkpoint="smollm2_135m", text="wikitext2_sample", prefill=None)
    exp = dataclasses.replace(experiment.load_experiment("quickstart"), accuracy=acc, weights="mxfp4", acts="bf16",
                              kv="fp8_e4m3", recipe=None)
    with pytest.raises(Stop):
        experiment._checkpoint_result(exp)
    key = evaluate.json.dumps({"weights": "mxfp4", "acts": "bf16", "kv": "fp8_e4m3", "recipe": None,
                               "checkpoint": "smollm2_135m", "text": "wikitext2_sample", "tokens": 40,
                               "prefill": None}, sort_keys=True)
    with pytest.raises(Stop):
        evaluate._checkpoint_accuracy_for(key)
    (a, *ra, ta), (b, *rb, tb) = calls
    assert isinstance(b, AccuracyConfig) and (a.checkpoint, a.text, a.tokens, a.prefill) == \
        (b.checkpoint, b.text, b.tokens, b.prefill) and ra == rb == ["mxfp4", "bf16", "fp8_e4m3", None]
    assert ta.startswith("accuracy.tokens in ") and tb == evaluate.SWEEP_TOKENS


def test_a_parallel_base_takes_its_system_from_a_system_axis(tmp_path):
    """Session 33's review: a base with a layout and a `system` axis was refused for want of a base system, which
    every point sets; the base now takes the axis's first system, as it takes `hw` from an hw axis."""
    spec = {"name": "tp", "base": {"model": "llama3_8b", "phase": "decode", "batch": 4, "seq": 1024,
                                   "parallel": {"tp": 2}, "level": "roofline"},
            "axes": [{"grid": {"system": ["dgx_h100", "dgx_a100"]}}], "output": str(tmp_path / "out")}
    with pytest.warns(UserWarning, match="the base system's device 'h100_sxm' does not price the points of system "
                                         r"dgx_a100 \(a100_sxm_80gb\)"):
        df = sweep(spec, quiet=True, write=False)
    assert list(df["system"]) == ["dgx_h100", "dgx_a100"]
    assert df["latency_s"].iloc[1] > df["latency_s"].iloc[0]  # A100: 2.0 vs 3.35 TB/s HBM on a decode step


@pytest.mark.parametrize("plain", [False, True], ids=["choices", "plain-list"])
@pytest.mark.parametrize("where", ["random", "search"])
def test_the_base_takes_its_system_and_device_from_a_random_axis_or_the_search(where, plain):
    """Session 33's note: a system (or a device) varied only by a random axis or by the search still left the
    base without one; the base now takes the first choice there, as from a grid axis."""
    from cosim.dse.spec import sweep_from_dict
    fields = {"system": {"choices": ["dgx_a100", "dgx_h100"]}, "hw": {"choices": ["a100_sxm_80gb", "h100_sxm"]}}
    if plain:  # a distribution given as a plain list of choices
        fields = {k: v["choices"] for k, v in fields.items()}
    spec = {"name": "tp", "base": {"model": "llama3_8b", "phase": "decode", "batch": 4, "seq": 1024,
                                   "parallel": {"tp": 2}, "level": "roofline"}, "output": "unused"}
    if where == "random":
        spec["axes"] = [{"random": {"samples": 2, "seed": 0, "fields": fields}}]
    else:
        spec["search"] = {"trials": 4, "fields": fields}
    with pytest.warns(UserWarning, match="does not price the points of system dgx_h100"):
        base = sweep_from_dict(spec).base
    assert (base.system, base.hw.name) == ("dgx_a100", "a100_sxm_80gb")
