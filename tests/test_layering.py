"""The house rule, checked on the AST of every module: data flows workloads -> hwmodels ->
cosim with no exception (no import, eager or lazy, from a lower package to a higher one),
and no two modules import each other, directly or round a loop."""

from pathlib import Path

from import_graph import cycles, edges, layer_violations

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_from_a_lower_package_to_a_higher_one():
    assert layer_violations(edges(ROOT)) == []


def test_no_import_cycles_between_modules():
    assert cycles(edges(ROOT)) == []


def test_the_checker_sees_violations_and_cycles(tmp_path):
    """The checker itself: a planted upward import and a planted two-module cycle are found."""
    for pkg, files in {"workloads": {"__init__.py": "", "a.py": "from cosim.z import f\n",
                                     "b.py": "def g():\n    from workloads import c\n",
                                     "c.py": "import workloads.b\n"},
                       "hwmodels": {"__init__.py": "from . import h\n", "h.py": "import workloads.a\n"},
                       "cosim": {"__init__.py": "", "z.py": "from hwmodels.h import x\n"}}.items():
        (tmp_path / pkg).mkdir()
        for name, text in files.items():
            (tmp_path / pkg / name).write_text(text)
    g = edges(tmp_path)
    assert layer_violations(g) == ["workloads.a imports cosim.z"]
    assert cycles(g) == [["cosim.z", "hwmodels.h", "workloads.a"], ["workloads.b", "workloads.c"]]
