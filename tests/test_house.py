"""House rule: no function over 80 lines in the packages, except numba kernels (a kernel
is one loop nest the compiler sees whole; splitting it would cost calls inside the loop)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cosim", "hwmodels", "workloads")
MAX_LINES = 80
NUMBA_DECORATORS = {"jit", "njit", "vectorize", "guvectorize", "generated_jit", "stencil"}


def _decorator_name(d) -> str:
    """`njit`, `numba.njit`, `njit(cache=True)` -> njit."""
    if isinstance(d, ast.Call):
        d = d.func
    if isinstance(d, ast.Attribute):
        return d.attr
    return d.id if isinstance(d, ast.Name) else ""


def long_functions(root: Path, packages=PACKAGES, max_lines: int = MAX_LINES) -> list[str]:
    """`path:line name (N lines)` of every function or method longer than max_lines (from
    its `def` to its last line, decorators not counted) that is not a numba kernel."""
    found = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                n = node.end_lineno - node.lineno + 1
                if n > max_lines and not NUMBA_DECORATORS & {_decorator_name(d) for d in node.decorator_list}:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_over_80_lines():
    assert long_functions(ROOT) == []


def test_the_checker_counts_lines_and_spares_kernels(tmp_path):
    (tmp_path / "cosim").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(80))  # def line + 80 = 81 lines
    (tmp_path / "cosim" / "m.py").write_text(
        "import numba\nfrom numba import njit\n\n"
        f"def long():\n{body}\n"
        f"def ok():\n{body[:-len('    x79 = 79') - 1]}\n"
        f"@njit(cache=True)\ndef kernel():\n{body}\n"
        f"@numba.vectorize\ndef ufunc():\n{body}\n"
        f"class C:\n    @staticmethod\n    def method():\n    {body.replace(chr(10) + '    ', chr(10) + '        ')}\n")
    found = long_functions(tmp_path, ("cosim",))
    # ok() has 80 lines (allowed); the two numba kernels are spared; a method counts like a function
    assert [f.split(" ", 1)[1] for f in found] == ["long (81 lines)", "method (81 lines)"]
    assert found[0].startswith("cosim/m.py:4 ")
