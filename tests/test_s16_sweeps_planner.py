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
