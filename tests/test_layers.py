"""The house: protobench's import graph has no cycle, and imports only point down the layers."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "protobench"

# Lowest first: a module may import from its own layer or below, never above. A module
# belongs to the layer of its longest listed prefix. The package face (protobench/__init__)
# and the entry points (command modules, __main__) sit on top.
LAYERS = [
    ["protobench._version", "protobench.errors", "protobench.registry", "protobench.fractions",
     "protobench.paths", "protobench.storage", "protobench.devices", "protobench.threat",
     "protobench.model.receptive_field", "protobench.source", "protobench.factories"],
    ["protobench.imaging", "protobench.data", "protobench.metrics"],
    ["protobench.model"],
    ["protobench.training", "protobench.explanations", "protobench.evaluation", "protobench.attacks"],
    ["protobench.api", "protobench.bench", "protobench.evaluation.stability"],
    ["protobench.figures", "protobench.report"],
    ["protobench.workflows"],  # the commands' work, ending with the figures
    ["protobench.cli", "protobench.run", "protobench.train", "protobench.evaluate",
     "protobench.explain", "protobench.regress", "protobench.convert", "protobench.__main__",
     "protobench.figures.__main__", "protobench.report.__main__", "protobench"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the protobench modules it imports, at the top or inside functions."""
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("protobench") else None
                if target and target != module:
                    graph[module].add(target)
    return graph


def _layer(module: str) -> int:
    matches = [(len(prefix), i) for i, layer in enumerate(LAYERS) for prefix in layer
               if module == prefix or (prefix != "protobench" and module.startswith(prefix + "."))]
    assert matches, f"{module} is in no layer of tests/test_layers.py"
    return max(matches)[1]


def test_no_import_cycle():
    graph = _imports(_modules())
    seen, on_path, cycles = set(), [], []

    def visit(node):
        if node in on_path:
            cycles.append(on_path[on_path.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        on_path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        on_path.pop()

    for module in sorted(graph):
        visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_imports_point_down_the_layers():
    graph = _imports(_modules())
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if _layer(t) > _layer(m)]
    assert not upward, "imports from a lower layer to a higher one: " + ", ".join(sorted(upward))
