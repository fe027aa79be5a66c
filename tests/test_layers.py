"""The package is layered: base → engine → backends → jobs → interface.

Every ``import`` in the package is scanned, function-level and ``TYPE_CHECKING`` ones included.
The test fails on an import cycle, on a module importing a higher layer, and on a ``_private``
name (or a private module of another package) imported from another module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# top-level folder -> package it maps to (pyproject.toml package-dir)
FOLDERS = {
    "core": "tuneport",
    "schemas": "tuneport.schemas",
    "providers": "tuneport.providers",
    "cli": "tuneport.cli",
}
# module-name prefix -> layer (higher may import lower, never the reverse); longest prefix wins
LAYERS = {
    "tuneport.errors": 0,
    "tuneport.files": 0,
    "tuneport.paths": 0,
    "tuneport.progress": 0,
    "tuneport.retry": 0,
    "tuneport.schemas": 0,
    "tuneport.data": 1,
    "tuneport.tokens": 1,
    "tuneport.validation": 1,
    "tuneport.pricing": 1,
    "tuneport.curate": 1,
    "tuneport.providers": 2,
    "tuneport.jobs": 3,
    "tuneport.evaluate": 3,
    "tuneport": 4,  # the package itself: the public API, like the CLI
    "tuneport.api": 4,
    "tuneport.cli": 4,
}
NAMES = {0: "base", 1: "engine", 2: "backends", 3: "jobs", 4: "interface"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _resolve(name: str) -> str:
    """The module file an imported dotted name lives in (``a.b.func`` → ``a.b``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str) -> Iterator[tuple[int, str, str | None]]:
    """``(line, imported module, imported name or None)`` of every import in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tuneport"):
                    yield node.lineno, _resolve(alias.name), None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if not source.startswith("tuneport"):
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in MODULES:  # `from package import submodule`
                    yield node.lineno, full, None
                else:
                    yield node.lineno, _resolve(source), alias.name


def graph() -> dict[str, set[str]]:
    return {m: {target for _, target, _ in imports(m) if target != m} for m in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in edges:
                continue
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_scan_sees_the_whole_package() -> None:
    assert {"tuneport", "tuneport.jobs.launch", "tuneport.providers.registry"} <= set(MODULES)
    assert len(MODULES) > 60
    # function-level imports are seen (the registry imports descriptors by name at run time)
    assert any(t == "tuneport.tokens.approx" for _, t, _ in imports("tuneport.providers.vertex"))


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_no_upward_imports() -> None:
    upward = [
        f"{MODULES[m].relative_to(ROOT)}:{line}: {NAMES[layer(m)]} module {m} imports "
        f"{NAMES[layer(t)]} module {t}"
        for m in MODULES
        for line, t, _ in imports(m)
        if layer(t) > layer(m)
    ]
    assert upward == []


def test_no_private_names_across_modules() -> None:
    private = []
    for m in MODULES:
        for line, target, name in imports(m):
            if target == m:
                continue
            where = f"{MODULES[m].relative_to(ROOT)}:{line}"
            if name is not None and name.startswith("_") and not name.startswith("__"):
                private.append(f"{where}: {m} imports {name} from {target}")
            hidden = [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
            owner = target.rsplit(".", 1)[0]
            if hidden and not (m == owner or m.startswith(owner + ".")):
                private.append(f"{where}: {m} imports the private module {target}")
    assert private == []


def test_the_engine_looks_up_no_backend() -> None:
    """The engine takes rules and counters as values: it never names the registry."""
    offenders = []
    for m in (m for m in MODULES if layer(m) <= 1):
        for node in ast.walk(ast.parse(MODULES[m].read_text(encoding="utf-8"))):
            name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
            if name in ("registry", "counter_for", "provider_for_model"):
                offenders.append(f"{m}:{node.lineno}: {name}")  # type: ignore[attr-defined]
    assert offenders == []
