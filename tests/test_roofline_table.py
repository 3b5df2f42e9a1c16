"""The roofline table's `(N more ops)` row sums the ops it hides in every column it shows,
energy included (it had time and share only; new-user audit, session 8)."""

import math

import cosim
from cosim.cli._common import si
from cosim.cli.roofline import format_report


def _rest_row(text: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith("(") and "more ops)" in ln)


def test_more_ops_row_has_the_hidden_ops_energy():
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048), "h100_sxm")
    rows = sorted(rep.rows, key=lambda r: -r["latency_s"])
    rest = rows[10:]
    line = _rest_row(format_report(rep, top=10))
    assert line.startswith(f"({len(rest)} more ops)")
    energy = sum(r["energy_j"] for r in rest)
    # by hand: the total's energy less the ten rows printed above it
    assert math.isclose(energy, rep.total_energy_j - sum(r["energy_j"] for r in rows[:10]), rel_tol=1e-9)
    assert line.endswith(f"{si(energy, 'J'):>9}") and energy > 0
    header = format_report(rep, top=10).splitlines()
    hdr = next(ln for ln in header if ln.startswith("op "))
    assert len(line) == len(hdr)  # the figure sits under the `energy` heading


def test_more_ops_row_energy_is_na_when_a_hidden_op_has_none():
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048), "h100_sxm")
    rows = sorted(rep.rows, key=lambda r: -r["latency_s"])
    rows[-1]["energy_j"] = float("nan")  # as the total line: an unknown part makes the sum unknown
    assert _rest_row(format_report(rep, top=10)).endswith("n/a")


def test_more_ops_row_figures_sit_under_their_headings():
    # was 10 characters left of the time column (README's quickstart block showed it)
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048), "h100_sxm")
    text = format_report(rep, top=10).splitlines()
    hdr = next(ln for ln in text if ln.startswith("op "))
    first, rest = text[text.index(hdr) + 2], _rest_row("\n".join(text))
    for a, b in ((first, rest), (hdr, rest)):
        assert [len(x) for x in (a, b)] == [len(hdr)] * 2
    assert rest.index("%") == first.index("%")


def test_header_names_the_implementation_when_no_profile_is_given():
    """Without a profile the trace is a plain HF model's kernels (the same ops and numbers as profile eager); the
    header says so instead of naming nothing (session 30), and names the profile when one is given."""
    trace = cosim.build_trace("llama3_8b", "decode", 1, 2048)
    plain = format_report(cosim.simulate(trace, "h100_sxm"))
    assert "implementation: none given: a plain Hugging Face model's kernels (as profile eager" in plain
    eager = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048, profile="eager"), "h100_sxm")
    assert eager.total_latency_s == cosim.simulate(trace, "h100_sxm").total_latency_s
    engine = cosim.build_trace("llama3_8b", "decode", 1, 2048, profile="engine")
    assert "implementation: engine: attention default, fused qkv+gate_up+rope+add_norm, CUDA graphs on" in \
        format_report(cosim.simulate(engine, "h100_sxm"))
