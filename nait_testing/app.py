"""The Streamlit app under AppTest: where it is, the widget lookup and the no-exception check."""
from __future__ import annotations

from pathlib import Path

APP = str(Path(__file__).resolve().parents[1] / "app.py")


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
