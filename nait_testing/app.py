"""The Streamlit app under AppTest: where it is, opening a page, the widget lookup, the no-exception check and
what download buttons offer."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = {
    "data": "Data & model",
    "samples": "Sample explorer",
    "neurons": "Neuron explorer",
    "map": "Overlap map",
    "select": "Select & export",
    "transfer": "Transfer",
}


@pytest.fixture(autouse=True)
def tmp_data_root(tmp_path_factory, monkeypatch):
    """The app's data root (studio.guard) for tests that type pytest's temporary paths into it: the session's
    temporary folder. Import it into a test module to use it there (an autouse fixture)."""
    monkeypatch.setenv("NAIT_DATA_ROOT", str(tmp_path_factory.getbasetemp()))


def check(at) -> None:
    """The script ran to its end: no exception shown."""
    assert not at.exception, [e.value for e in at.exception]


def widget(at, key: str):
    """The widget with this key, whatever its kind."""
    for kind in ("radio", "slider", "selectbox", "text_input", "number_input", "toggle", "checkbox"):
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    if page != "data":
        at.switch_page(f"pages/{page}.py")
        at.run()
    check(at)
    assert [t.value for t in at.main.title] == [PAGES[page]]
    return at


def downloads(monkeypatch) -> dict[str, bytes]:
    """Capture what download buttons offer: file name -> bytes."""
    seen = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        seen[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return seen


def compact_demo(root, k: int = 64, exact_sample: int = 40, model: str = "smollm2-135m"):
    """The compact pool (and its exact sample) that `NAIT_SKETCH=k NAIT_EXACT_SAMPLE=exact_sample` makes the
    app open on the demo, written under `root` without the model: the demo's exact pool store (already
    captured there, e.g. by the `demo` fixture) projected post hoc with the capture's own matrices
    (`sketch.write_projected`, as `sketch.compact_copy` does) and its seeded sample rows copied (`write_rows`), each under the key a
    real `nait capture --sketch k --exact-sample n` gives. Returns (compact store, exact sample store, rows)."""
    from dataclasses import replace

    from nait_core import pipeline
    from nait_core.capture import CaptureOptions, store_key
    from nait_core.data import sample_rows
    from nait_core.models import LazyModel
    from nait_core.sketch import write_projected, write_rows
    from nait_core.store import Store

    lazy = LazyModel(model)
    dataset = pipeline.load_data("demo")  # NAIT_DEMO_SIZE records, as the app reads them
    exact_key, _ = store_key(lazy, dataset, None, CaptureOptions(), shape=False)
    exact = Store.open(Path(root) / exact_key)
    options = pipeline.compact_options(CaptureOptions(), k, 0, exact_sample)
    key, manifest = store_key(lazy, dataset, None, options, shape=False)
    manifest |= {"shape": exact.manifest["shape"], "shard_size": exact.shard_size}
    compact = Store.create(Path(root) / key, manifest)
    write_projected(compact, exact, options.sketch)
    rows = sample_rows(len(dataset), exact_sample, options.sketch.seed)
    if not exact_sample:
        return Store.open(compact.path), None, rows[:0]
    subset = dataset.subset(rows, f"{dataset.name}-exact{len(rows)}-s{options.sketch.seed}")
    sample_options = replace(options, sketch=None, exact_sample=0, sample_of=key)
    sample_key, sample_manifest = store_key(lazy, subset, None, sample_options, shape=False)
    sample_manifest |= {"shape": exact.manifest["shape"]}
    sample = Store.create(Path(root) / sample_key, sample_manifest)
    write_rows(sample, exact, rows)
    return Store.open(compact.path), Store.open(sample.path), rows
