"""The house rules hold: layers point one way with no cycle, imports sit at the top (but for the heavy
optional ones), functions stay short. Each rule is also shown to catch a planted violation."""

from __future__ import annotations

import pytest

from tools.architecture import (
    LAYERS,
    MAX_FUNCTION_LINES,
    all_violations,
    cycles,
    inner_import_violations,
    layer_of,
    layer_violations,
    long_function_violations,
    read_modules,
)


@pytest.fixture(scope="module")
def modules():
    return read_modules()


def test_the_tree_has_no_violation(modules):
    problems = all_violations(modules)
    assert not problems, "\n".join(problems)


def test_every_module_has_a_layer_and_the_layers_are_ordered(modules):
    for name in modules:
        layer_of(name)  # raises for a module no layer claims
    order = [layer.name for layer in LAYERS]
    assert order.index("renderer") < order.index("core") < order.index("models") < order.index("inference")
    assert order.index("pipeline") < order.index("eval") < order.index("cli") < order.index("app")


@pytest.mark.parametrize("module, source, expected", [
    # the product path must not reach up into evaluation
    ("recon.pipeline.planted", "from recon.eval.runner import run_protocol\n", "from the higher layer eval"),
    # the model must not import the baselines (a sibling above it)
    ("recon.models.planted", "import recon.baselines.optimize\n", "from the higher layer data / baselines / export"),
    # nothing in recon imports the app
    ("recon.cli.planted", "from app.main import launch\n", "from the higher layer app"),
    # the renderer is the bottom
    ("renderer.planted", "from recon.core.types import Views\n", "from the higher layer core"),
    # independent siblings stay apart
    ("recon.export.planted", "from recon.baselines.optimize import OptimizeBaseline\n", "independent sibling"),
])
def test_an_upward_import_is_caught(module, source, expected):
    problems = layer_violations(read_modules(extra={module: source}))
    assert len(problems) == 1 and expected in problems[0] and module in problems[0], problems


def test_a_cycle_is_caught():
    extra = {"recon.core.planted_a": "from recon.core import planted_b\n",
             "recon.core.planted_b": "from recon.core.planted_a import x\n"}
    assert cycles(read_modules(extra=extra)) == [["recon.core.planted_a", "recon.core.planted_b"]]


def test_imports_inside_functions_only_for_heavy_optional_libraries():
    source = ("def f():\n    import gsplat  # CUDA only\n    return gsplat\n\n\n"
              "def g():\n    from recon.core.types import Views\n    return Views\n")
    problems = inner_import_violations(read_modules(extra={"recon.core.planted": source}))
    assert len(problems) == 1 and "import of recon inside a function" in problems[0]


def test_long_functions_are_caught():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    problems = long_function_violations(read_modules(extra={"recon.core.planted": f"def long():\n{body}"}))
    assert len(problems) == 1 and f"long is {MAX_FUNCTION_LINES + 1} lines" in problems[0]


def test_the_architecture_diagrams_match_the_code(modules):
    from tools.architecture_docs import stale_sections  # imports the pipeline (torch)

    assert stale_sections(modules) == [], "run: python -m tools.architecture --write-docs"
