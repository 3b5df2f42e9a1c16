"""The import graph of our three packages, read from the AST of every module (imports at
module level and inside functions alike: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("workloads", "hwmodels", "cosim")  # lowest first: each may import only those before it


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((root / pkg).rglob("*.py")):
            parts = list(p.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def _resolve(name: str, known: dict) -> str | None:
    """The longest known module that `name` is or lives in (cosim.plots.pyplot -> cosim.plots)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in known:
            return cand
        parts.pop()
    return None


def edges(root: Path) -> dict[str, set]:
    known = modules(root)
    graph: dict[str, set] = {m: set() for m in known}
    for mod, path in known.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] or [base]
            else:
                continue
            for t in targets:
                dep = _resolve(t, known)
                if dep and dep != mod:
                    graph[mod].add(dep)
    return graph


def layer_violations(graph: dict) -> list[str]:
    rank = {p: i for i, p in enumerate(PACKAGES)}
    return sorted(f"{m} imports {d}" for m, deps in graph.items() for d in deps
                  if rank[d.split(".")[0]] > rank[m.split(".")[0]])


def cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    import sys
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)
