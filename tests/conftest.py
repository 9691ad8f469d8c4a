"""Shared fixtures (the bundled model, its tokenizer, a tiny model folder, the small demo) and the test tiers.

Every test is in exactly one tier, by what it needs (`make test-fast` runs `unit`, `make test-model` adds
`model`, `make test` runs all):

- `unit`: no model at all (no weights, no tokenizer): data, stores, scoring on synthetic arrays, the CLI's checks.
- `model`: a tiny random model or the bundled SmolLM2 model (or only its tokenizer); loads in seconds, and each
  test stays within about 30 CPU-seconds (a few short records through the bundled model, a 1-step fine-tune).
- `slow`: real captures of demo data, longer fine-tuning runs, building and installing the wheel, a browser,
  a Ray cluster: anything costlier than that.

Mark a module with `pytestmark = pytest.mark.<tier>` and a test that needs another tier with its own marker:
the closest marker wins (test, then class, then module), and a test with none is a collection error.
Helpers that are not fixtures live in the `nait_testing` package (shared with bench/).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = ("unit", "model", "slow")
_TIER = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Keep each test's closest tier marker only, so `-m unit` selects by that tier alone."""
    unmarked = []
    for item in items:
        tier = next((mark.name for mark in item.iter_markers() if mark.name in TIERS), None)
        if tier is None:
            unmarked.append(item.nodeid)
        else:
            item.stash[_TIER] = tier
    if unmarked:
        raise pytest.UsageError(
            f"tests without a tier marker ({', '.join(TIERS)}; see tests/conftest.py): "
            + ", ".join(unmarked[:20])
            + (" ..." if len(unmarked) > 20 else "")
        )
    for item in items:
        for node in item.listchain():
            node.own_markers[:] = [mark for mark in node.own_markers if mark.name not in TIERS]
    for item in items:
        item.add_marker(item.stash[_TIER])


@pytest.fixture(scope="session")
def bundled():
    """The real bundled SmolLM2-135M-Instruct on CPU, fp32."""
    from nait_core.models import load_model

    return load_model("smollm2-135m", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tokenizer():
    """The bundled model's tokenizer alone (no weights loaded), with a pad token."""
    from nait_testing.models import bundled_tokenizer

    return bundled_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A seeded random tiny Llama (`nait_testing.models.tiny_model("llama")`) with the bundled tokenizer, saved
    as a model folder: what `--model <folder>` and Ray actors load."""
    from nait_testing.models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", tokenizer)


@pytest.fixture(scope="session")
def store_root(tmp_path_factory):
    """One store folder per test session, so captures made by one test are reused by the next."""
    return tmp_path_factory.mktemp("cached_features")


@pytest.fixture(scope="module")
def demo(store_root):
    """The small demo (nait_testing.demo) captured by the CLI into the session's store folder (or
    NAIT_APP_TEST_STORE, to reuse captures between runs); NAIT_* point the app at it for the module."""
    from nait_testing.demo import DEMO_SIZE, TARGET_SIZE, nait_select

    root = Path(os.environ.get("NAIT_APP_TEST_STORE") or store_root)
    saved = {k: os.environ.get(k) for k in ("NAIT_DEMO_SIZE", "NAIT_TARGET_SIZE", "NAIT_STORE_DIR")}
    os.environ.update(NAIT_DEMO_SIZE=DEMO_SIZE, NAIT_TARGET_SIZE=TARGET_SIZE, NAIT_STORE_DIR=str(root))
    nait_select(root, root / "warmup.jsonl", "--ratio", "0.1")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
