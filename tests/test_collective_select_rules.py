"""Sessions 12 and 12b's selection rules are one implementation (collective_select_rules), both rounds' wrappers
calling it: hand-built folds, scores and choices checked by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cosim.calibrate import collective_select_rules as rules
from cosim.calibrate import collective_select_s12 as s12
from cosim.calibrate import collective_select_s12b as s12b


@dataclass
class _Fold:
    cid: str
    machine: str
    errors: tuple
    params: tuple = ()


FOLDS = [_Fold("C0", "a", (0.1, 0.2)), _Fold("C0", "b", (0.1, 0.3)),
         _Fold("C1", "a", (0.1, 0.1)), _Fold("C1", "b", (0.1, -0.1)),
         _Fold("C3", "a", (0.0, 0.05)), _Fold("C3", "b", (0.0, 0.14))]


def test_scores_by_hand():
    res = rules.summarise(FOLDS, 0.15)
    # C0: 1 of 2 within 15 % on each machine -> S 0.5, pooled 2 of 4; C1 and C3: all 4
    assert (res["C0"]["S"], res["C0"]["pooled_within"], res["C0"]["points"]) == (0.5, 2, 4)
    assert res["C1"]["S"] == res["C3"]["S"] == 1.0 and res["C3"]["pooled_within"] == 4
    assert math.isclose(res["C0"]["worst_p90"], 0.28)  # machine b: p90 of (0.1, 0.3) = 0.1 + 0.9 * 0.2
    assert "worst_f" not in res["C0"] and rules.summarise(FOLDS, 0.15, worst_f=True)["C0"]["worst_f"] == 0.5


def test_both_rounds_choose_through_the_one_rule():
    # C1 and C3 both gain 2 rows, no machine loses one, S ties at 1.0: the fewer fitted parameters win (C3: 0)
    res = s12.summarise(FOLDS)
    assert res == rules.summarise(FOLDS, s12.TOL, worst_f=True)
    chosen, why = s12.choose(res)
    assert chosen == "C3" and why["C1"] == "qualifies: pooled gain +2 rows, no table loses a row"
    assert (chosen, why) == rules.choose(res, "C0", list(res), s12.FITTED, s12.CANDIDATES, unit="table")
    # s12b: the same rule within a family, its first id the incumbent, "machine" in the reasons
    fam = ("R0", "R1")
    folds = [_Fold("R0" if f.cid == "C0" else "R1", f.machine, f.errors, (1,)) for f in FOLDS if f.cid != "C3"]
    res_b = s12b.summarise(folds)
    assert res_b["R1"]["per"]["a"]["params"] == (1,)
    assert s12b.choose(res_b, fam) == ("R1", {"R0": "incumbent", "R1": "qualifies: pooled gain +2 rows, no machine "
                                                                      "loses a row"})
    # margin: a gain of 2 rows does not qualify at margin 3
    assert rules.choose(res_b, "R0", fam, s12b.FITTED, fam, margin_rows=3)[0] is None
