"""The Streamlit app under AppTest: where it is, opening a page, the widget lookup, the no-exception check and
what download buttons offer."""

from __future__ import annotations

from pathlib import Path

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
