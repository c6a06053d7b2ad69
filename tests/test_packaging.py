"""The wheel carries one namespace, `clusteragent`; nothing generic lands in site-packages."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(proc.stderr[-2000:])
    return next(out.glob("clusteragent-*.whl"))


def test_wheel_has_only_the_clusteragent_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"clusteragent"}
    for sub in ("tools", "prompts", "evals", "training"):
        assert f"clusteragent/{sub}/__init__.py" in names
    assert "clusteragent/data/clinc150_sample.jsonl" in names
    assert "clusteragent/data/ATTRIBUTION.md" in names
    assert {"clusteragent/tools/data/instruct_head.npz", "clusteragent/tools/data/instruct_head.json"} <= set(names)


def test_entry_point_is_declared(wheel):
    z = zipfile.ZipFile(wheel)
    ep = next(n for n in z.namelist() if n.endswith("entry_points.txt"))
    assert "clusteragent = clusteragent.cli:main" in z.read(ep).decode()
