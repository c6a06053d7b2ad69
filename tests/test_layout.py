"""The code's shape: the public API at the package root, small modules, no private names across modules,
and tools/ free of prompts and model code."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_MODULES = sorted((ROOT / "agent").glob("*.py")) + sorted((ROOT / "tools").glob("*.py"))
MAX_LINES = 400


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every `from clusteragent... import name` and (module, "") for `import clusteragent...`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("clusteragent"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("clusteragent")]
    return found


def test_the_public_api_is_exported_from_the_package_root():
    import clusteragent
    from clusteragent import ClusterAgent, ClusterResult, RefineSession, load_corpus
    from clusteragent.api import ClusterAgent as facade
    from clusteragent.refine import RefineSession as session
    from clusteragent.result import ClusterResult as result
    from clusteragent.tools.corpus import load_corpus as loader

    assert (ClusterAgent, ClusterResult, RefineSession, load_corpus) == (facade, result, session, loader)
    assert set(clusteragent.__all__) >= {"ClusterAgent", "ClusterResult", "RefineSession", "load_corpus"}
    with pytest.raises(AttributeError):
        clusteragent.NoSuchThing  # noqa: B018


def test_importing_the_package_loads_no_heavy_library():
    code = "import sys, clusteragent; print(sorted({'torch', 'langgraph', 'faiss'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("path", PACKAGE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_module_is_over_the_line_limit(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", PACKAGE_MODULES + sorted((ROOT / "evals").glob("*.py")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_module_imports_a_private_name_of_another(path):
    private = [f"{module}.{name}" for module, name in _imports(path) if name.startswith("_") and not name.startswith("__")]
    assert private == []


@pytest.mark.parametrize("path", sorted((ROOT / "tools").glob("*.py")), ids=lambda p: p.name)
def test_tools_import_no_prompts_and_no_model_code(path):
    allowed = ("clusteragent.tools", "clusteragent.errors", "clusteragent.settings")
    assert [m for m, _ in _imports(path) if not m.startswith(allowed)] == []
