"""The package's import graph, read from the source with ``ast``: no import cycles, no upward
imports between the layers below, no module shadowed by a same-named attribute of its package,
and every module placed in a layer (a new module must be given one here, deliberately)."""

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "sdesim"

#: Layers, lowest first: a module may import modules of its own layer or of lower ones. Prefixes
#: name a module and everything below it; the longest matching prefix wins.
LAYERS = {
    # the toolkit's core: random numbers and Brownian trees, schemes, what an SDE and a result are
    "sdesim.brownian": 0, "sdesim.solvers": 0, "sdesim.sde": 0, "sdesim.solution": 0, "sdesim.noise_check": 0,
    "sdesim.analysis": 0, "sdesim.runners": 0, "sdesim.runners.borrow": 0, "sdesim.runners.threads": 0,
    # compile once: fingerprints of compiled code's inputs, the disk cache of kernels
    "sdesim.caching": 0,
    # per-path entries of an SDE's args
    "sdesim.path_args": 0,
    # a validated plan and the CPU runner of it (kernel factory, moments, failures); reference SDEs
    "sdesim.plan": 1, "sdesim.runners.kernel": 1, "sdesim.runners.block_kernel": 1, "sdesim.runners.cpu": 1,
    "sdesim.runners.results": 1,
    "sdesim.reference": 1,
    # the GPU runner of the same plan
    "sdesim.cuda": 2,
    # the toolkit's front: solve() and brownian_path(), the public namespace
    "sdesim.driver": 3, "sdesim.paths": 3, "sdesim": 3,
    # the paper: models, SDE builders, theory, discrete SGD
    "sdesim.normalized": 4,
    # other libraries side by side (torchsde adapters, agreement statistics); property-testing kit
    "sdesim.compare": 5, "sdesim.testing": 5,
    # the application: CLI, configs, simulate, sweep, experiments, report
    "sdesim.app": 6, "sdesim.__main__": 6,
}


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name, level, current, is_package):
    """The absolute module a ``from``/``import`` names (relative imports resolved)."""
    if level == 0:
        return name
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(modules):
    """``{module: {imported sdesim module, ...}}``, imports inside functions included."""
    graph = {}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module or "", node.level, mod, is_package)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for n in names:
                while n and n not in modules:  # `import sdesim.x.y` -> the deepest module that exists
                    n = n.rpartition(".")[0]
                if n.startswith("sdesim") and n != mod:
                    targets.add(n)
        graph[mod] = targets
    return graph


def _layer(mod):
    """The layer of ``mod``: of the longest prefix naming it or a package above it (the root
    package ``sdesim`` names itself only)."""
    best = max((p for p in LAYERS if mod == p or (p != "sdesim" and mod.startswith(p + "."))),
               key=len, default=None)
    return None if best is None else LAYERS[best]


def test_every_module_has_a_layer():
    missing = sorted(m for m in _modules() if _layer(m) is None)
    assert not missing, f"place these modules in a layer of tests/test_architecture.py: {missing}"


def test_no_upward_imports():
    graph = _imports(_modules())
    bad = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
           for m, ts in graph.items() for t in sorted(ts)
           if _layer(m) is not None and _layer(t) is not None and _layer(t) > _layer(m)]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = _imports(_modules())
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" -> ".join(c + [c[0]]) for c in cycles)


def _cycles(graph):
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _layer("sdesim.runners.kernel") > _layer("sdesim.runners.threads")
    assert _layer("sdesim.app.cli") > _layer("sdesim.normalized.sgd") > _layer("sdesim.driver")


@pytest.mark.parametrize("package", ["sdesim", "sdesim.normalized", "sdesim.cuda", "sdesim.compare"])
def test_no_submodule_is_shadowed_by_an_attribute(package):
    """``import sdesim.x as m`` must give the module ``x``, not a same-named function."""
    if package in ("sdesim.cuda",):
        pytest.importorskip("numba.cuda")
    pkg = importlib.import_module(package)
    folder = pathlib.Path(pkg.__file__).parent
    subs = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"] + \
           [p.name for p in folder.iterdir() if (p / "__init__.py").exists()]
    shadowed = []
    for name in subs:
        attr = getattr(pkg, name, None)
        if attr is not None and not isinstance(attr, type(pkg)):
            shadowed.append(f"{package}.{name} is a {type(attr).__name__}")
    assert not shadowed, shadowed
