"""Every page runs inside app.py's navigation, so the shared sidebar always comes first.

With a `pages/` folder next to the entry file, Streamlit runs a script run through its older multipage mode
when it has not yet seen st.navigation in this process: the first run after the server starts, and every
AppTest run. That mode runs a `pages/` script on its own when its URL is asked for (a deep link such as
/select as the server's first request, or any AppTest rerun on a page), skipping app.py. A page script
therefore starts with `if through_app():` — false when app.py is not running it, after running app.py
(whose navigation then runs the page, this time inside it).
"""

from __future__ import annotations

import runpy
import threading
from contextlib import contextmanager

_state = threading.local()  # one script run per thread: sessions do not see each other's flag


@contextmanager
def navigating():
    """app.py runs the chosen page inside this."""
    _state.active = True
    try:
        yield
    finally:
        _state.active = False


def through_app() -> bool:
    """True when app.py's navigation is running this page; otherwise run app.py (which runs the page) and
    return False, so the page script does nothing more itself."""
    if getattr(_state, "active", False):
        return True
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    runpy.run_path(get_script_run_ctx().main_script_path, run_name="__main__")
    return False
