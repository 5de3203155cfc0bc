"""The parts of backwatch import each other in one direction only.

Every module under src/backwatch is parsed (nothing is imported) and every import counts:
module level, inside functions, under ``TYPE_CHECKING``. A part is a package (``domain``,
``store``, ``services``, ``ingest``, ``runners``, ``engine``, ``notify``, ``web``, ``cli``)
or a top-level module (``settings``, ``ids``, ``client`` …; ``__init__`` is the package's own
``backwatch/__init__.py``). The order of the parts is the one docs/architecture.md shows
("Parts and the direction of imports"): this test reads it from there, so the picture and
the code cannot drift apart.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "backwatch"
DOC = ROOT / "docs" / "architecture.md"
#: the line before the fenced block of layers in docs/architecture.md
MARKER = "<!-- import layers: read by tests/unit/test_import_graph.py -->"

#: module pairs allowed to import each other (each one a debt, with its reason)
MUTUAL_ALLOWED = {
    # the checks registry: diagnostics loads the modules that add checks to it, and they
    # import its Check type and register decorator
    frozenset({"backwatch.services.diagnostics", "backwatch.services.selfmon"}),
    frozenset({"backwatch.services.diagnostics", "backwatch.services.system_checks"}),
}
#: web modules allowed to import the store (none: web/app.py opens the Hub, which is
#: services/hub.py's to wire; pages and routes read through services/reads.py and views.py)
WEB_STORE_ALLOWED: set[str] = set()
#: modules that must load with the standard library alone (and the modules they import)
STDLIB_ONLY = ("backwatch.client", "backwatch.ids")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The module an imported name lives in: ``backwatch.store.queries.get_run`` →
    ``backwatch.store.queries``; None when it is not ours."""
    if name != "backwatch" and not name.startswith("backwatch."):
        return None
    while name not in modules():
        name = name.rpartition(".")[0]
    return name


def imports_in(source: str, package: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import in ``source``, relative ones made absolute
    against ``package`` (the package the module is in, or the package itself)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((base, node.lineno))
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return found


@cache
def imports_of(module: str) -> tuple[tuple[str, int], ...]:
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return tuple(imports_in(path.read_text(), package))


@cache
def module_edges() -> dict[str, dict[str, int]]:
    """module → {backwatch module it imports: first line}."""
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for module in modules():
        for name, line in imports_of(module):
            target = resolve(name)
            if target is not None and target != module:
                edges[module].setdefault(target, line)
    return edges


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@cache
def part_edges() -> dict[tuple[str, str], list[str]]:
    """(part, part it imports) → the imports that make the edge, as ``module:line → target``."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, targets in module_edges().items():
        for target, line in targets.items():
            a, b = part_of(module), part_of(target)
            if a != b:
                out[a, b].append(f"{module}:{line} → {target}")
    return out


def doc_layers() -> list[list[str]]:
    """The layers of docs/architecture.md, top first: each a list of parts."""
    text = DOC.read_text()
    assert MARKER in text, f"docs/architecture.md lost its layer list ({MARKER})"
    block = re.search(r"```text\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block is not None, "the layer list is a ```text block right after the marker"
    layers = []
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line and set(line) - set("↓ "):
            layers.append(line.split())
    return layers


def rank() -> dict[str, int]:
    out: dict[str, int] = {}
    for depth, layer in enumerate(reversed(doc_layers())):
        for part in layer:
            assert part not in out, f"{part} is listed twice in docs/architecture.md"
            out[part] = depth
    return out


def test_every_part_is_in_the_documented_layers() -> None:
    parts = {part_of(m) for m in modules()}
    listed = set(rank())
    assert not parts - listed, (
        f"parts missing from docs/architecture.md's layers: {sorted(parts - listed)}"
    )
    assert not listed - parts, f"layers name parts that do not exist: {sorted(listed - parts)}"


def test_no_two_parts_import_each_other() -> None:
    edges = part_edges()
    cycles = sorted(
        f"{a} ↔ {b}: " + "; ".join(edges[a, b][:3] + edges[b, a][:3])
        for a, b in edges
        if a < b and (b, a) in edges
    )
    assert not cycles, "parts that import each other:\n" + "\n".join(cycles)


def test_no_cycle_between_parts() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in part_edges():
        graph[a].add(b)
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("parts import each other in a loop: " + " → ".join(cycle))


def test_every_import_points_down_the_documented_layers() -> None:
    ranks = rank()
    wrong = []
    for (a, b), where in sorted(part_edges().items()):
        if a in ranks and b in ranks and ranks[a] <= ranks[b]:
            side = "beside" if ranks[a] == ranks[b] else "above"
            wrong.append(f"{a} imports {b}, {side} it: " + "; ".join(where[:3]))
    assert not wrong, "imports against docs/architecture.md's layers:\n" + "\n".join(wrong)


def test_no_two_modules_import_each_other() -> None:
    """Inside a part too (cli/insight ↔ cli/insight_dashboard, runners/base ↔ runners/dumps
    were such pairs). A package's ``__init__`` and its own modules are exempt: that is how
    a registry loads the modules that register in it."""
    edges = module_edges()
    pairs = []
    for a, targets in edges.items():
        for b in targets:
            if a < b and a in edges.get(b, {}) and frozenset({a, b}) not in MUTUAL_ALLOWED:
                if b.startswith(a + ".") and a in _packages():
                    continue  # a registry (package) and one of its modules
                pairs.append(f"{a}:{edges[a][b]} ↔ {b}:{edges[b][a]}")
    assert not pairs, "modules that import each other:\n" + "\n".join(sorted(pairs))


def _packages() -> set[str]:
    return {m for m, p in modules().items() if p.name == "__init__.py"}


def test_the_web_reads_through_services_not_the_store() -> None:
    """Pages and routes read as they write, through services (services/reads.py)."""
    found = [
        f"{module}:{line} → {target}"
        for module, targets in module_edges().items()
        if part_of(module) == "web" and module not in WEB_STORE_ALLOWED
        for target, line in targets.items()
        if part_of(target) == "store"
    ]
    assert not found, "web imports the store:\n" + "\n".join(sorted(found))


@pytest.mark.parametrize("start", STDLIB_ONLY)
def test_the_client_and_ids_need_only_the_standard_library(start: str) -> None:
    seen, todo, foreign = {start}, [start], []
    while todo:
        module = todo.pop()
        for name, line in imports_of(module):
            target = resolve(name)
            if target is None:
                top = name.split(".")[0]
                if top and top != "__future__" and top not in sys.stdlib_module_names:
                    foreign.append(f"{module}:{line} imports {name}")
            elif target not in seen:
                seen.add(target)
                todo.append(target)
    assert not foreign, f"{start} must load with the standard library alone:\n" + "\n".join(foreign)


def test_the_parser_sees_every_kind_of_import() -> None:
    """Inside functions, under TYPE_CHECKING, relative: if the parser missed them, every
    test above would pass on nothing."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import backwatch.errors\n"
        "if TYPE_CHECKING:\n"
        "    from backwatch.settings import Settings\n"
        "def f():\n"
        "    from backwatch.store import queries\n"
        "    from . import reads\n"
        "    from ..domain.report import RunReport\n"
    )
    found = {resolve(name) for name, _ in imports_in(source, "backwatch.services")}
    assert found >= {
        "backwatch.errors",
        "backwatch.settings",
        "backwatch.store.queries",
        "backwatch.services.reads",
        "backwatch.domain.report",
    }
    assert "backwatch.runners.scheduler" in module_edges()["backwatch.web.app"]
    assert ("web", "services") in part_edges()
