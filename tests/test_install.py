"""The package as a user gets it: build the wheel, install it with the dependencies it declares into a clean
virtual environment (no system site-packages, no PYTHONPATH), and run `nait --help`, `nait app --help`, a tiny
`nait select` (JSONL pool, Arrow target, a random tiny Llama folder), `nait app` itself, and the installed app's
Outcomes page. Plus the app in headless Chromium: the sidebar lists the st.navigation pages only.

The clean environment is built by pip from the wheel's own metadata (core + the `app` extra), so an import
that pyproject.toml does not declare fails here. Resolving and unpacking torch and friends takes minutes, so
the environment is kept under ~/.cache/nait/wheel-test/<hash of the declared requirements>/ and reused while
those requirements are unchanged (the new wheel is reinstalled into it, then `pip check`);
NAIT_WHEEL_TEST_FRESH=1 builds it anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from nait_testing.browser import wait_until_serving
from nait_testing.data import alpaca_rows, save_to_disk, write_arrow_file, write_jsonl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "app"
SKIP = {".venv", ".git", "cached_features", "build", "runs", "out", ".pytest_cache", "__pycache__", "screenshots"}


@pytest.mark.unit
def test_requirements_txt_matches_pyproject():
    """requirements.txt (what `make` installs) = pyproject's dependencies and extras, same specifiers."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"])
    declared |= {r for name, extra in project["optional-dependencies"].items() if name != "all" for r in extra}
    listed = {
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == declared


def run(command, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(c) for c in command],
        check=False,
        capture_output=True,
        text=True,
        env={**env, **kwargs.pop("env", {})},
        timeout=kwargs.pop("timeout", 1800),
        **kwargs,
    )
    return result


def build_wheel(tmp: Path) -> Path:
    """`pip wheel` on a copy of the source (setuptools writes build/ next to the sources)."""
    source = tmp / "source"
    shutil.copytree(
        ROOT, source, ignore=lambda folder, names: [n for n in names if n in SKIP or n.endswith(".egg-info")]
    )
    result = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", source, "-w", tmp / "dist"]
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp / "dist").glob("nait_studio-*.whl")
    return wheel


def declared_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines for the core and the extras installed here."""
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    lines = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    return sorted(r for r in lines if "extra ==" not in r or any(f'extra == "{e}"' in r for e in EXTRAS.split(",")))


def clean_venv(wheel: Path) -> tuple[Path, str]:
    """A venv holding the wheel and what pip resolved from its declared requirements; (venv, how it was made)."""
    key = hashlib.sha256(json.dumps([sys.version_info[:2], EXTRAS, declared_requirements(wheel)]).encode()).hexdigest()[
        :16
    ]
    venv = Path(os.environ.get("NAIT_CACHE_DIR") or Path.home() / ".cache" / "nait") / "wheel-test" / key
    pip = [venv / "bin" / "python", "-m", "pip"]
    complete = venv / "nait-wheel-test-complete"  # written last: a half-built venv is never reused
    if complete.exists() and os.environ.get("NAIT_WHEEL_TEST_FRESH") != "1":
        result = run([*pip, "install", "-q", "--no-deps", "--force-reinstall", "--no-compile", wheel])
        assert result.returncode == 0, result.stderr
        how = "reused"
    else:
        shutil.rmtree(venv, ignore_errors=True)
        assert run([sys.executable, "-m", "venv", venv]).returncode == 0  # a clean venv: no --system-site-packages
        result = run([*pip, "install", "-q", "--no-compile", f"{wheel}[{EXTRAS}]"])
        assert result.returncode == 0, result.stderr[-3000:]
        complete.write_text(json.dumps(declared_requirements(wheel)))
        how = "fresh"
    check = run([*pip, "check"])
    assert check.returncode == 0, check.stdout + check.stderr  # every declared requirement is satisfied
    return venv, how


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    wheel = build_wheel(tmp)
    built = time.monotonic()
    venv, how = clean_venv(wheel)
    print(f"\nwheel built in {built - started:.0f} s; venv {how} in {time.monotonic() - built:.0f} s ({venv})")
    return venv


def test_installed_wheel_runs_nait(installed, tmp_path, tiny_model_dir):
    bin_ = installed / "bin"
    where = run(
        [bin_ / "python", "-c", "import nait_core, studio; print(nait_core.__file__, studio.__file__)"], cwd=tmp_path
    )
    assert where.returncode == 0 and all(p.startswith(str(installed)) for p in where.stdout.split()), where.stdout

    result = run([bin_ / "nait", "--help"], cwd=tmp_path)
    assert result.returncode == 0 and "select" in result.stdout and "app" in result.stdout, result.stderr
    result = run([bin_ / "nait", "app", "--help"], cwd=tmp_path)
    assert result.returncode == 0 and "streamlit run" in result.stdout, result.stderr

    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca_rows(6) + alpaca_rows(2, topic="product", start=20))
    target = write_arrow_file(tmp_path / "target.arrow", alpaca_rows(3, topic="product", start=40))  # pyarrow: core
    result = run(
        [
            bin_ / "nait",
            "select",
            "--candidates",
            pool,
            "--target",
            target,
            "--ratio",
            "0.5",
            "--model",
            tiny_model_dir,
            "--device",
            "cpu",
            "--store-dir",
            tmp_path / "stores",
            "--out",
            tmp_path / "chosen.jsonl",
            "--scores",
            tmp_path / "scores.jsonl",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = pool.read_text().splitlines()
    chosen = (tmp_path / "chosen.jsonl").read_text().splitlines()
    assert len(chosen) == 4 and set(chosen) <= set(lines)
    assert len((tmp_path / "scores.jsonl").read_text().splitlines()) == 8

    # datasets is an extra: without it, a save_to_disk folder is a clear error, not an ImportError
    folder = save_to_disk(tmp_path / "pool_ds", alpaca_rows(3))
    result = run(
        [
            bin_ / "nait",
            "select",
            "--candidates",
            folder,
            "--method",
            "random",
            "--ratio",
            "0.5",
            "--out",
            tmp_path / "x.jsonl",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "pip install 'nait-studio[datasets]'" in result.stderr, result.stderr


def test_installed_app_runs(installed, tmp_path):
    """The installed app.py and pages/ (nait_app): Outcomes opens on the shipped runs; `nait app` serves."""
    script = """
from streamlit.testing.v1 import AppTest
from nait_core.cli import app_script
at = AppTest.from_file(str(app_script()), default_timeout=120)
at.switch_page("pages/outcomes.py")
at.run()
assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
print(app_script(), sorted(at.selectbox(key="outcomes_run").options))
"""
    result = run([installed / "bin" / "python", "-c", script], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    path, runs = result.stdout.split(" ", 1)
    assert path == str(
        installed
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "site-packages"
        / "nait_app"
        / "app.py"
    )
    assert "gsm8k-control" in runs

    port = 8700 + os.getpid() % 200
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.Popen(
        [
            installed / "bin" / "nait",
            "app",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)


TITLES = [
    "Data & model",
    "Sample explorer",
    "Neuron explorer",
    "Overlap map",
    "Select & export",
    "Transfer",
    "Outcomes",
]


def test_browser_lists_only_the_navigation_pages(tmp_path, tiny_model_dir):
    """`pages/` beside app.py: the sidebar lists app.py's st.navigation pages by title, no file of pages/ on its
    own; a deep link as the server's first request (Streamlit's older pages/ mode) still gets the shared sidebar."""
    from nait_testing.browser import CHROMIUM, browser, serve, wait_idle

    if not Path(CHROMIUM).exists():
        if os.environ.get("NAIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} not installed")
        pytest.skip(f"{CHROMIUM} not installed (make browser)")
    env = {
        "NAIT_MODEL": str(tiny_model_dir),
        "NAIT_DEMO_SIZE": "20",
        "NAIT_TARGET_SIZE": "4",
        "NAIT_STORE_DIR": str(tmp_path / "stores"),
        "NAIT_EVAL_DIR": str(ROOT / "docs" / "results"),
        "NAIT_DATA_ROOT": str(tmp_path.parent),  # the app's data root holds the tiny model
    }
    with serve(env) as url, browser() as page:
        for path, title in (("select", "Select & export"), ("outcomes", "Outcomes"), ("", "Data & model")):
            page.goto(f"{url}/{path}")
            wait_idle(page)
            assert not page.locator('[data-testid="stException"]').count(), page.locator(
                '[data-testid="stException"]'
            ).first.inner_text()
            assert page.locator('[data-testid="stMain"] h1').first.inner_text().strip() == title
            links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
            labels = [links.nth(i).locator("span").last.inner_text().strip() for i in range(links.count())]
            assert labels == TITLES, labels
            assert page.get_by_text("NAIT Studio", exact=True).count()  # app.py's sidebar title: app.py ran
