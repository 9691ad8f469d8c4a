"""The view in the URL: scoring settings and each page's own choices (record, neuron, targets) live in query
parameters, so a reload, the browser's back button or a shared link restore the view; and links that open a
neuron or a record on another page.

Rules: before its widgets, a page calls `follow(Choice(name, key, default, cast), ...)`: when the URL (page and
parameters) is not the one this session last wrote (a new session, a page switch, Back/Forward, an edited
link), each widget is set from it exactly as a reload sets it: its parameter when the link has one (a bad one
is ignored with a note), else its default. After them the page calls `put(name, value, default)`; a value
equal to its default stays out of the URL, so opening a page writes nothing and a page switch is one history
entry. `session.show` restores the scoring settings before a page and writes everything after it (`publish`).
What every page shares (the scoring settings, the map's chosen records) travels in the sidebar's links; each
page's link also carries that page's own choices from when it was last shown (`remember_choices`), so
reopening a page from the sidebar shows it as it was left.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from nait_core.spec import SelectionSpec, from_query, to_query

PUBLISHED = "url_published"  # what this session last wrote to the URL
PENDING = "url_pending"  # what the page running now wants in it
PUBLISHED_PAGE = "url_published_page"  # the page it was written on
OWN = "url_own"  # the page's own part of what was last written (PUBLISHED less shared_params)
PAGE_CHOICES = "url_page_choices"  # url_path -> that page's own parameters when it was last left


def link(page: str, **params) -> str:
    """A relative link to another page of the app with these query parameters (e.g. `neurons?neuron=L1.N2`)
    and what every page shares (`shared_params`), so following it keeps the scoring settings, as the
    sidebar's links do."""
    return f"{page}?{urlencode({**params, **shared_params()})}"


def neuron_link(neuron: str) -> str:
    return link("neurons", neuron=neuron)


def record_link(row: int) -> str:
    return link("samples", row=int(row))


def target_link(target: str, row: int) -> str:
    """The Sample explorer with record `row` of target set `target` shown."""
    return link("samples", tset=target, trow=int(row))


def map_link(row: int) -> str:
    """The Overlap map with this pool record marked."""
    return link("map", row=int(row))


def _url() -> dict[str, str]:
    return {k: st.query_params[k] for k in st.query_params}


def _page() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx else ""


def _same_page() -> bool:
    """Whether this run is on the page the URL was last written on (so a URL without a parameter this
    session wrote is Back/Forward or an edited link, not a page switch, which drops every parameter)."""
    return st.session_state.get(PUBLISHED_PAGE) == _page()


def new_url() -> bool:
    """Whether this run's URL (page and parameters) is not the one this session last wrote: a new session, a
    page switch, Back/Forward or an edited link. The page's widgets then follow it, as on a reload."""
    return not _same_page() or st.session_state.get(PUBLISHED) != _url()


@dataclass(frozen=True)
class Choice:
    """A page's choice kept in the URL: query parameter `name` for widget `key`; `default` is what the page
    shows when the link has no `name`; `cast` turns the URL's text into the widget's value (ValueError: the
    widget cannot take it)."""

    name: str
    key: str
    default: Any = None
    cast: Callable[[str], Any] = str


def follow(*choices: Choice) -> None:
    """Before the widgets: on a new URL (`new_url`) set each widget from it, as a reload would; otherwise the
    widget keeps its state (its default the first time it is drawn, without a default argument beside it:
    Streamlit warns when a widget gets both)."""
    fresh = new_url()
    for c in choices:
        value = st.query_params.get(c.name) if fresh else None
        if value is not None:
            try:
                st.session_state[c.key] = c.cast(value)
                continue
            except (ValueError, TypeError) as error:
                st.warning(f"Ignoring {c.name}={value!r} in the link: {error or 'not one of the choices'}")
        if fresh or c.key not in st.session_state:
            st.session_state[c.key] = c.default


def one_of(options) -> Callable[[str], str]:
    """A cast that takes only one of `options`."""
    options = list(options)

    def cast(value: str) -> str:
        if value not in options:
            raise ValueError(f"not one of {', '.join(map(str, options))}")
        return value

    return cast


def number_in(low, high, kind=int) -> Callable[[str], Any]:
    """A cast to a number in [low, high]."""

    def cast(value: str):
        number = kind(value)
        if not low <= number <= high:
            raise ValueError(f"{number} is not in {low}…{high}")
        return number

    return cast


def flag(value: str) -> bool:
    """A cast for a toggle: "1" on, "0" off."""
    if value not in ("0", "1"):
        raise ValueError("not 1 (on) or 0 (off)")
    return value == "1"


def span_in(low: float, high: float) -> Callable[[str], tuple[float, float]]:
    """A cast for a range slider over [low, high]: "a,b" with a ≤ b (clipped to the range: the URL keeps 6
    significant digits)."""

    def cast(value: str) -> tuple[float, float]:
        a, b = (float(x) for x in value.split(","))
        if not (math.isfinite(a) and math.isfinite(b) and a <= b):
            raise ValueError(f"{value} is not two numbers low,high")
        a, b = max(a, low), min(b, high)
        if a > b:
            raise ValueError(f"{value} is outside the scores' range {low:.6g} to {high:.6g}")
        return a, b

    return cast


URL_ROWS_MAX = 8_000  # characters of rows in a link: longer ones fail on many servers and proxies


def rows_text(rows) -> str | None:
    """Sorted pool rows as short ranges for the URL ("3-7.12"); None for none."""
    starts, ends = _runs(rows)
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in zip(starts.tolist(), ends.tolist())]
    return ".".join(parts) or None


def link_rows(rows) -> str | None:
    """`rows_text`, or None when it would be longer than a link keeps (`URL_ROWS_MAX`): counted in runs
    first, so a million scattered rows are not written out to find that out."""
    starts, _ = _runs(rows)
    if 2 * len(starts) - 1 > URL_ROWS_MAX:  # each run takes a digit and a separator at least
        return None
    text = rows_text(rows)
    return text if text and len(text) <= URL_ROWS_MAX else None


def _runs(rows) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) row of each run of consecutive rows, sorted and without repeats."""
    values = [] if rows is None else rows if isinstance(rows, np.ndarray) else list(rows)
    rows = np.unique(np.asarray(values, dtype=np.int64))
    if not len(rows):
        return rows, rows
    breaks = np.flatnonzero(np.diff(rows) != 1)
    return np.r_[rows[0], rows[breaks + 1]], np.r_[rows[breaks], rows[-1]]


def rows_from(text: str, n: int) -> list[int]:
    """`rows_text`'s ranges back to rows of a pool of `n` (ValueError: not such ranges, or outside it)."""
    rows = []
    for part in text.split("."):
        low, _, high = part.partition("-")
        low, high = int(low), int(high or low)
        if not 0 <= low <= high < n:
            raise ValueError(f"{part} is not a range of rows of this pool of {n:,} records")
        rows.extend(range(low, high + 1))
    return rows


def put(name: str, value, default=None) -> None:
    """Ask for `name=value` in the URL when the page has run (None, or the page's default, leaves it out)."""
    if value is not None and value != default:
        st.session_state.setdefault(PENDING, {})[name] = str(value)


# ---------------------------------------------------------------- scoring settings


def _spec(settings) -> SelectionSpec:
    """The studio's settings as the spec's scoring, cut and merge (data and model are the session's)."""
    return SelectionSpec(scoring=settings.options, cut=settings.cut, merge=settings.merge)


def settings_params(settings) -> dict[str, str]:
    """The settings that differ from the defaults, as query parameters (`spec.to_query`: one writer)."""
    return to_query(_spec(settings))


# The query keys of the settings the Select page has widgets for; a link's rds_pool, embed_model or layers
# would not survive that page, so they are not restored.
SETTING_NAMES = ("method", "threshold", "centre", "reduction", "layer_norm", "ratio", "top", "min_score", "merge")


def settings_from(params: dict[str, str], base):
    """Settings from query parameters (`spec.from_query`: one reader; missing ones take the defaults);
    a bad value raises ValueError naming its parameter."""
    spec = from_query(params, _spec(base))
    return replace(base, options=spec.scoring, cut=spec.cut, merge=spec.merge)


def _restore_chosen(n: int) -> None:
    """The map's chosen records (`chosen`, the Sample and Neuron explorers' filter) from a new URL; Back to a
    URL without them on the same page clears them (a page switch through a link that lacks them keeps them)."""
    value = st.query_params.get("chosen")
    if not new_url() or (value is None and not _same_page()):
        return
    if value is None:
        st.session_state.pop("map_filter", None)
        return
    try:
        st.session_state["map_filter"] = rows_from(value, n)
    except ValueError as error:
        st.warning(f"Ignoring the chosen records in the link: {error}")


def shared_params() -> dict[str, str]:
    """What every page's link carries (the sidebar's navigation): the scoring settings and the map's chosen
    records (unless too scattered for a link: `URL_ROWS_MAX`), so a page switch keeps them in the URL and is
    one history entry."""
    from .session import settings

    chosen = link_rows(st.session_state.get("map_filter"))
    return {**settings_params(settings()), **({"chosen": chosen} if chosen else {})}


def restore_settings() -> None:
    """Before a page: settings from the URL when it brings new ones (the Select page's widgets follow), and the
    map's chosen records."""
    from .session import set_settings, settings, studio

    st.session_state[PENDING] = {}
    if "studio" in st.session_state:
        _restore_chosen(len(studio().pool))
    url = {k: v for k, v in _url().items() if k in SETTING_NAMES}
    last = {k: v for k, v in st.session_state.get(PUBLISHED, {}).items() if k in SETTING_NAMES}
    if url == last or (not url and not _same_page()):  # ours, or a page switch (it drops them): nothing new
        return
    try:
        new = settings_from(url, settings())
    except ValueError as error:
        st.warning(f"Ignoring the scoring settings in the link: {error}")
        return
    if new != settings():
        set_settings(new)
        from .select_page import widget_values

        # The Select page's widgets show these settings, as on a reload (their keys outlive page switches).
        if "studio" in st.session_state:
            st.session_state.update(widget_values(new, list(studio().methods), len(studio().pool)))
        else:  # no pool loaded yet (the Outcomes page): they start from these settings when first drawn
            for key in widget_values(new, [new.options.method], 1):
                st.session_state.pop(key, None)


def publish() -> None:
    """After a page: write the current settings and the page's own parameters to the URL."""
    own = st.session_state.pop(PENDING, {})
    params = {**shared_params(), **own}
    if params != _url():
        st.query_params.from_dict(params)
    st.session_state[PUBLISHED] = params
    st.session_state[PUBLISHED_PAGE] = _page()
    st.session_state[OWN] = own


SCORE_UNITS = {"score"}  # own choices in the units of the scores: dropped from a link once the settings change


def _context() -> dict:
    """What a page's remembered choices are relative to: the loaded pool's and targets' stores, the scoring
    settings."""
    from .session import settings

    loaded = st.session_state.get("studio")
    data = None if loaded is None else [str(s.path) for s in [loaded.pool_store, *loaded.target_stores]]
    return {"data": data, "settings": settings_params(settings())}


def remember_choices(url_path: str, reads_data: bool = True) -> None:
    """After page `url_path` ran: keep its own parameters for its sidebar link (`page_links`), with what they
    are relative to (a page that reads no pool or targets, `reads_data` False, keeps them whatever is loaded).
    Only when this run published them (a page stopped before `publish` leaves the last ones)."""
    if _same_page():
        own = dict(st.session_state.get(OWN, {}))
        context = _context() if reads_data else {**_context(), "data": "any"}
        st.session_state.setdefault(PAGE_CHOICES, {})[url_path] = {"own": own, **context}


def page_links(url_paths: list[str]) -> dict[str, dict[str, str]]:
    """The query parameters of the sidebar's link to each page: what every page shares, then the page's own
    choices as it was last left, as `publish` writes them. Choices made on other data (another pool, other
    targets) are dropped, and a score range once the scoring settings changed. (Context and shared parameters
    are read once for all the links: this runs on every rerun.)"""
    now, shared, choices = _context(), shared_params(), st.session_state.get(PAGE_CHOICES, {})
    links = {}
    for url_path in url_paths:
        remembered, own = choices.get(url_path), {}
        if remembered is not None and remembered["data"] in ("any", now["data"]):
            own = dict(remembered["own"])
            if remembered["settings"] != now["settings"]:
                own = {k: v for k, v in own.items() if k not in SCORE_UNITS}
        links[url_path] = {**shared, **own}
    return links
