"""The architecture rules of recon, renderer and app, read from the source, and the picture of them.

Three rules, checked by ``tests/test_architecture.py`` and shown in ``docs/architecture.md``:

- **Layers.** Every module sits in one layer of ``LAYERS`` (lowest first) and imports only from its
  own layer or lower ones; siblings marked independent do not import each other. Cycles between
  modules are refused too.
- **Imports at the top.** An import inside a function is allowed only for the heavy optional
  dependencies in ``LAZY_IMPORTS``, each with its reason.
- **Short functions.** No function is longer than ``MAX_FUNCTION_LINES`` lines.

``python -m tools.architecture`` prints every violation (exit 1 when there is one);
``python -m tools.architecture --write-docs`` regenerates the diagrams in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("renderer", "recon", "app")
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Layer:
    """One floor of the house: module prefixes (a package and everything under it, or an exact module
    when the name ends in ``$``). ``independent``: the groups on this floor do not import each other."""

    name: str
    groups: tuple[str, ...]
    independent: bool = False


LAYERS: tuple[Layer, ...] = (
    Layer("renderer", ("renderer",)),
    Layer("core", ("recon.core",)),
    Layer("io", ("recon.io",)),
    Layer("models", ("recon.models",)),
    Layer("inference", ("recon.inference",)),
    Layer("data / baselines / export", ("recon.data", "recon.baselines", "recon.export"), independent=True),
    Layer("pipeline", ("recon.pipeline",)),
    Layer("eval", ("recon.eval",)),
    Layer("train", ("recon.train",)),
    Layer("api", ("recon$",)),
    Layer("cli", ("recon.cli", "recon.__main__$")),
    Layer("app", ("app",)),
)

# Imports allowed inside functions: heavy or optional dependencies that most runs never touch.
LAZY_IMPORTS: dict[str, str] = {
    "gsplat": "CUDA rasterizer; builds kernels on first import, absent on CPU machines",
    "gradio": "the web app only; seconds to import",
    "open3d": "mesh export only; heavy native library",
    "ray": "batch --engine ray only; optional extra",
    "pycolmap": "structure from motion only; heavy native library",
    "cv2": "GrabCut masks only; heavy native library",
    "matplotlib": "plots only; slow to import",
    "xatlas": "UV unwrapping for textured meshes only",
    "imageio": "the app's turntable video only (ffmpeg)",
    "imageio_ffmpeg": "the app's turntable video only (ffmpeg)",
    "playwright": "browser tests only",
    "app.main": "the web page imports gradio (seconds): only `recon app` loads it, not every command",
}


@dataclass
class ModuleInfo:
    name: str
    path: Path
    imports: dict[str, int] = field(default_factory=dict)  # imported module -> first line
    inner_imports: list[tuple[int, str]] = field(default_factory=list)  # (line, top-level package)
    long_functions: list[tuple[int, str, int]] = field(default_factory=list)  # (line, name, length)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom | ast.Import, module: str, is_package: bool, known: set[str]) -> list[str]:
    """Modules of our packages that an import statement loads (a ``from X import y`` names the
    submodule ``X.y`` when there is one, else ``X``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    base = module.split(".")
    if node.level:
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        src = ".".join(base + ([node.module] if node.module else []))
    else:
        src = node.module or ""
    out = []
    for a in node.names:
        sub = f"{src}.{a.name}"
        if sub in known:
            out.append(sub)
        elif src in known:
            out.append(src)
    return out


def _function_nodes(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def read_modules(root: Path = REPO, packages: tuple[str, ...] = PACKAGES,
                 extra: dict[str, str] | None = None) -> dict[str, ModuleInfo]:
    """Parse every module of ``packages`` under ``root``. ``extra``: ``{module name: source}`` added as
    if they were files (the tests use it to show that a violation is caught)."""
    sources = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            sources[_module_name(path, root)] = (path, path.read_text())
    for name, src in (extra or {}).items():
        sources[name] = (root / (name.replace(".", "/") + ".py"), src)
    known = set(sources)
    modules = {}
    for name, (path, src) in sources.items():
        info = ModuleInfo(name, path)
        tree = ast.parse(src, filename=str(path))
        inner = set()
        for fn in _function_nodes(tree):
            length = fn.end_lineno - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                info.long_functions.append((fn.lineno, fn.name, length))
            inner.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if id(node) in inner:
                full = node.names[0].name if isinstance(node, ast.Import) else (node.module or "")
                full = full if not getattr(node, "level", 0) else name
                info.inner_imports.append((node.lineno, full if full in LAZY_IMPORTS else full.split(".")[0]))
            for target in _resolve(node, name, path.name == "__init__.py", known):
                if target != name:
                    info.imports.setdefault(target, node.lineno)
        modules[name] = info
    return modules


def layer_of(module: str) -> tuple[int, int]:
    """``(layer index, group index)`` of a module; ``ValueError`` when no layer claims it."""
    best = None
    for li, layer in enumerate(LAYERS):
        for gi, prefix in enumerate(layer.groups):
            exact = prefix.endswith("$")
            p = prefix.rstrip("$")
            hit = module == p if exact else (module == p or module.startswith(p + "."))
            if hit and (best is None or len(p) > best[2]):
                best = (li, gi, len(p))
    if best is None:
        raise ValueError(f"{module}: no layer in tools.architecture.LAYERS claims it")
    return best[0], best[1]


def layer_violations(modules: dict[str, ModuleInfo]) -> list[str]:
    out = []
    for m in modules.values():
        try:
            ml, mg = layer_of(m.name)
        except ValueError as e:
            out.append(str(e))
            continue
        for target, line in m.imports.items():
            try:
                tl, tg = layer_of(target)
            except ValueError:
                continue  # reported for the target itself
            if tl > ml:
                out.append(f"{m.path.relative_to(REPO)}:{line}: {m.name} ({LAYERS[ml].name}) imports "
                           f"{target} from the higher layer {LAYERS[tl].name}")
            elif tl == ml and tg != mg and LAYERS[ml].independent:
                out.append(f"{m.path.relative_to(REPO)}:{line}: {m.name} imports its independent sibling {target}")
    return out


def cycles(modules: dict[str, ModuleInfo]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in modules[v].imports:
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return out


def inner_import_violations(modules: dict[str, ModuleInfo]) -> list[str]:
    return [f"{m.path.relative_to(REPO)}:{line}: import of {top} inside a function (allowed only for "
            f"{', '.join(sorted(LAZY_IMPORTS))})"
            for m in modules.values() for line, top in m.inner_imports if top not in LAZY_IMPORTS]


def long_function_violations(modules: dict[str, ModuleInfo]) -> list[str]:
    return [f"{m.path.relative_to(REPO)}:{line}: {fn} is {n} lines (at most {MAX_FUNCTION_LINES})"
            for m in modules.values() for line, fn, n in m.long_functions]


def all_violations(modules: dict[str, ModuleInfo]) -> list[str]:
    return (layer_violations(modules) + [f"import cycle: {' -> '.join(c)}" for c in cycles(modules)]
            + inner_import_violations(modules) + long_function_violations(modules))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.architecture", description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true", help="regenerate the diagrams in docs/architecture.md")
    args = parser.parse_args(argv)
    modules = read_modules()
    if args.write_docs:
        from tools.architecture_docs import write_docs  # the doc generator imports the pipeline (torch)

        write_docs(modules)
    problems = all_violations(modules)
    for p in problems:
        print(p)
    print(f"{len(modules)} modules, {sum(len(m.imports) for m in modules.values())} imports, "
          f"{len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
