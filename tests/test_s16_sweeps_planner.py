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
