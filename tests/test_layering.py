"""The package's imports point one way: no module cycle, and the core imports no tool.

Every ``tracker/**/*.py`` is parsed (nothing is imported or run), relative imports are resolved
and imports inside functions count too, so a cycle cannot hide behind a local import."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "tracker"
TOOLS = ("tracker.benchmark", "tracker.export", "tracker.demo", "tracker.train")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: Set[str]) -> Set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> Dict[str, Set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as a list of modules (empty when there is none)."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(module: str) -> List[str]:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return []


def _is_tool(module: str) -> bool:
    return any(module == tool or module.startswith(tool + ".") for tool in TOOLS)


def test_the_walk_sees_the_whole_package():
    graph = _graph()
    assert len(graph) > 40
    assert "tracker.backends.onnx_backend" in graph["tracker.api"] or "tracker.backends" in graph["tracker.api"]
    assert "tracker.cli_args" in graph["tracker.benchmark.int8"], "from ..cli_args resolved"


def test_the_package_has_no_import_cycle():
    assert _cycle(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_core_imports_no_tool():
    offenders = {
        module: sorted(target for target in targets if _is_tool(target))
        for module, targets in _graph().items()
        if not _is_tool(module)
    }
    assert {module: found for module, found in offenders.items() if found} == {}


def test_installed_code_does_not_know_the_development_folder():
    mentions = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "TRACKER_SHARED" in path.read_text(encoding="utf-8")
    ]
    assert mentions == []
