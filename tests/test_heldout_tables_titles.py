"""validation/heldout_tables.py: every re-scored suite's title names the model through one constant (`_MODEL`, `_H100_MODEL`)
(the H100 title typed "the session-11 model" by hand beside it, so a later re-score would have left it stale)."""

from tests.script_loader import load_script


def test_the_h100_title_names_the_model_constant(monkeypatch):
    mod = load_script("validation/heldout_tables.py", "heldout_tables_titles")
    titles = []
    monkeypatch.setattr(mod, "_H100_MODEL", "the session-99 re-fit")
    monkeypatch.setattr(mod, "fit_shapes", lambda *csvs: set())
    monkeypatch.setattr(mod, "scored_suite", lambda hw, rows, split, seen, title: (titles.append(title) or [], [], 0))
    monkeypatch.setattr(mod, "e2e_table", lambda r_all: [])
    mod.h100_lines([])
    assert titles == ["H100 held-out suite (session 9, FA2 pinned; PREVIOUSLY SEEN, re-scored with the session-99 "
                      "re-fit)"]
