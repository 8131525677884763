"""The package's layers, read from the source (every import, function-local ones included): the functional core
never imports Dagster or the Dagster shell, each package imports only the layers below it, and no module imports
itself back through others."""

import ast
from pathlib import Path

import hf_assets

ROOT = Path(hf_assets.__file__).parent
# Bottom to top: a module may import its own layer and the layers below it, never one above.
LAYERS = [
    {"env", "progress", "cores"},
    {"config"},
    {"cache", "data"},
    {"encode", "training", "testing"},
    {"resources", "automation", "executors", "dagster_internals"},
    {"assets"},
    {"definitions", "instance_report"},
]
CORE = {"env", "progress", "cores", "config", "cache", "data", "encode", "training", "testing"}
SHELL_LIBRARIES = ("dagster", "dagster_dask", "dagster_k8s", "dagster_webserver")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, package: str = "") -> set[str]:
    """Every module `source` (a module of `package`) imports, at the top or inside a function; `from package import
    name` counts the submodule `package.name` when there is one, else the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]).strip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}
GRAPH = {
    name: {m for m in imports_of(path.read_text(), package_of(path)) if m in MODULES and m != name}
    for name, path in MODULES.items()
}


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "hf_assets" and not any(m.split(".")[1] in layer for layer in LAYERS)] == []


def test_the_core_imports_neither_dagster_nor_the_shell():
    found = []
    for name, path in MODULES.items():
        if name == "hf_assets" or name.split(".")[1] not in CORE:
            continue
        for imported in imports_of(path.read_text(), package_of(path)):
            top = imported.split(".")[0]
            shell = imported.startswith("hf_assets.") and imported.split(".")[1] not in CORE
            if top in SHELL_LIBRARIES or shell:
                found.append(f"{name} imports {imported}")
    assert found == []


def test_no_module_imports_a_layer_above_its_own():
    found = [
        f"{name} imports {imported}"
        for name, imported_set in GRAPH.items()
        if name != "hf_assets"
        for imported in imported_set
        if imported != "hf_assets" and layer_of(imported) > layer_of(name)
    ]
    assert found == []


def test_no_module_cycle():
    cycles = strongly_connected(GRAPH)
    assert [sorted(c) for c in cycles if len(c) > 1] == []


def test_no_module_name_means_two_things():
    """A file name names one module: `previews.py` in two packages, or `sizes.py` beside `sizing.py`, reads as one
    thing and is two."""
    by_name: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            by_name.setdefault(path.stem, []).append(name)
    assert {stem: names for stem, names in by_name.items() if len(names) > 1} == {}
    assert not ({"sizes", "sizing"} <= {p.stem for p in (ROOT / "data").glob("*.py")})


def test_the_check_sees_function_local_and_relative_imports_and_cycles():
    """The reader counts an import inside a function and a relative one; the cycle finder finds a two-module cycle."""
    source = "from . import engine_types\ndef f():\n    from hf_assets.encode import media\n"
    assert {"hf_assets.encode.engine_types", "hf_assets.encode.media"} <= imports_of(source, "hf_assets.encode")
    components = strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert {frozenset(c) for c in components} == {frozenset({"a", "b"}), frozenset({"c"})}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a directed graph (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components
