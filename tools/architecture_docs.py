"""The generated parts of docs/architecture.md: the layer picture (from the import graph) and the
data flow of one ``reconstruct`` call (from the stage functions' type hints).

Both are Mermaid diagrams between ``<!-- generated:NAME -->`` and ``<!-- end:NAME -->`` markers;
``write_docs`` replaces them in place and ``stale_sections`` says which no longer match the code.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

from recon.pipeline.run import STAGES
from tools.architecture import LAYERS, REPO, ModuleInfo, layer_of

DOC = REPO / "docs" / "architecture.md"


def _group_name(module: str) -> str:
    li, gi = layer_of(module)
    return LAYERS[li].groups[gi].rstrip("$")


def _node(name: str) -> str:
    return re.sub(r"\W", "_", name)


def layer_diagram(modules: dict[str, ModuleInfo]) -> str:
    """One box per package group inside one box per layer (top = highest); an arrow for every pair
    of groups with at least one import between them, labelled with the number of imports."""
    counts: dict[tuple[str, str], int] = {}
    for m in modules.values():
        for target in m.imports:
            a, b = _group_name(m.name), _group_name(target)
            if a != b:
                counts[(a, b)] = counts.get((a, b), 0) + 1
    lines = ["```mermaid", "flowchart TB"]
    for i, layer in reversed(list(enumerate(LAYERS))):
        lines.append(f'  subgraph L{i}["{i}. {layer.name}"]')
        for g in layer.groups:
            lines.append(f'    {_node(g.rstrip("$"))}["{g.rstrip("$")}"]')
        lines.append("  end")
    for (a, b), n in sorted(counts.items()):
        lines.append(f"  {_node(a)} -->|{n}| {_node(b)}")
    lines.append("```")
    return "\n".join(lines)


def _type_name(tp) -> str:
    text = getattr(tp, "__name__", None) if isinstance(tp, type) else None
    text = text or str(tp)
    return re.sub(r"\b(?:typing|pathlib|[a-z_]+(?:\.[a-z_]+)+)\.", "", text)


def dataflow_diagram() -> str:
    """The stages of ``recon.pipeline.run.STAGES`` in order. A stage's argument whose type an earlier
    stage returns is an arrow from that stage; any other argument is an input (rounded box)."""
    lines = ["```mermaid", "flowchart LR"]
    produced: dict[str, str] = {}
    for fn in STAGES:
        hints = typing.get_type_hints(fn)
        ret = _type_name(hints.pop("return"))
        stage = _node(fn.__name__)
        lines.append(f'  {stage}[["{fn.__module__}.{fn.__name__}"]]')
        for param in inspect.signature(fn).parameters:
            name = _type_name(hints[param]) if param in hints else "?"
            if name in produced:
                lines.append(f'  {produced[name]} -->|"{name}"| {stage}')
            else:
                node = _node(f"in_{fn.__name__}_{param}")
                lines.append(f'  {node}(["{param}: {name}"]) -.-> {stage}')
        produced[ret] = stage
    lines.append(f'  {_node(STAGES[-1].__name__)} -->|"{ret}"| out(("files"))')
    lines.append("```")
    return "\n".join(lines)


def sections(modules: dict[str, ModuleInfo]) -> dict[str, str]:
    return {"layers": layer_diagram(modules), "dataflow": dataflow_diagram()}


def _replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"{DOC}: no <!-- generated:{name} --> ... <!-- end:{name} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def stale_sections(modules: dict[str, ModuleInfo], doc: Path = DOC) -> list[str]:
    text = doc.read_text()
    return [name for name, body in sections(modules).items() if _replace(text, name, body) != text]


def write_docs(modules: dict[str, ModuleInfo], doc: Path = DOC) -> None:
    text = doc.read_text()
    for name, body in sections(modules).items():
        text = _replace(text, name, body)
    doc.write_text(text)
