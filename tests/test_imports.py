"""Light engine modules load without torch or transformers; the package's own names load on first use."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nait_core

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
# Reading records, stores and features, scoring a captured store and exporting a selection need no model.
LIGHT = (
    "data",
    "sources",
    "datasets",
    "store",
    "selection",
    "features",
    "scoring",
    "sketch",
    "atomic",
    "progress",
    "explore",
    "explain",
    "neuron_ids",
)
HEAVY = ("torch", "transformers")


def _heavy_after_import(module: str) -> list[str]:
    """The heavy packages loaded by `import nait_core.<module>` in a fresh interpreter."""
    code = f"import sys, nait_core.{module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_do_not_import_torch(module):
    assert _heavy_after_import(module) == []


def test_package_names_load_on_first_use():
    for name in nait_core.__all__:
        assert getattr(nait_core, name) is not None
    from nait_core import Cut, load_model, score_store  # noqa: F401 (the names users import)
    from nait_core.selection import Cut as selection_cut

    assert Cut is selection_cut and set(nait_core.__all__) <= set(dir(nait_core))
    with pytest.raises(AttributeError):
        nait_core.no_such_name  # noqa: B018


@pytest.mark.parametrize("module", ["nait_core", "nait_core.cli"])
def test_python_dash_m_runs_the_cli(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: nait")
