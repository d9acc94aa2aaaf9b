"""The package's shape: no import cycle between modules of ``looped``, lazy imports included, and no
task name or split name compared outside ``looped/tasks/``."""

from __future__ import annotations

import ast
from pathlib import Path

import looped
import pytest
import torch

ROOT = Path(looped.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every ``looped`` module that ``path`` imports anywhere (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("looped")}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            if target.startswith("looped"):
                # ``from pkg import sub`` imports the submodule; ``from pkg import thing`` reads pkg itself
                found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        # importing a submodule runs its packages' __init__ first, which is not an edge of the importer
        graph[name] = {m for m in imports_of(path, name, set(paths)) if m in paths and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_looped():
    graph = import_graph()
    assert "looped.model" in graph["looped.dtnet"]  # the graph sees real edges
    assert find_cycle({k: v - {"looped"} for k, v in graph.items() if k != "looped"}) is None


def task_words() -> set[str]:
    """Every built-in task's name and split names, and the split keys tasks once declared."""
    from looped.tasks import TASKS

    words = {"length", "tier"}
    for name, cls in TASKS.items():
        words.add(name)
        words |= {*getattr(cls, "eval_splits", ()), *getattr(cls, "train_splits", ())}
    return {w for w in words if isinstance(w, str)}


def compared_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants that are compared (==, !=, in, not in) or matched in a ``case``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                elements = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                found += [(e.lineno, e.value) for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        elif isinstance(node, ast.MatchValue) and isinstance(node.value, ast.Constant):
            found.append((node.lineno, node.value.value))
    return found


def test_compared_strings_are_found():
    tree = ast.parse("if task == 'sudoku' or key in ('length', 'x'):\n    pass\nmatch t:\n    case 'chess': pass")
    assert sorted(v for _, v in compared_strings(tree)) == ["chess", "length", "sudoku", "x"]


def test_no_task_name_is_compared_outside_tasks():
    words = task_words()
    assert {"prefix-sums", "sudoku", "chess", "mate1", "easy"} <= words  # the check knows real names
    offenders = [f"{path.relative_to(ROOT.parent)}:{line}: {value!r}"
                 for path in ROOT.rglob("*.py") if "tasks" not in path.relative_to(ROOT).parts
                 for line, value in compared_strings(ast.parse(path.read_text())) if value in words]
    assert offenders == []


def test_public_functions_are_not_shadowed_by_modules():
    import importlib
    import warnings

    import looped

    for name in ("train", "evaluate", "solve", "analyze"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            importlib.import_module(f"looped.{name}")  # the old module path, kept for one release
            assert callable(getattr(looped, name)) and getattr(looped, name).__module__ != f"looped.{name}"
        assert not caught  # importing the old path alone warns nothing; using a name from it does
    with pytest.warns(FutureWarning, match="looped.training"):
        from looped.train import Trainer  # noqa: F401
    with pytest.warns(FutureWarning, match="fixed_point"):
        from looped import stability

        stability.solve(lambda h, x: 0.5 * h + x, torch.zeros(1, 2), torch.ones(1, 2), max_iter=5)


def test_the_library_never_imports_the_lab_and_every_lab_script_compiles():
    import py_compile

    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "lab" or n.startswith("lab.") for n in names), path
    lab = ROOT.parent / "lab"
    scripts = sorted(lab.rglob("*.py"))
    assert len(scripts) >= 10  # the studies' scripts are there
    for script in scripts:
        py_compile.compile(str(script), doraise=True)
