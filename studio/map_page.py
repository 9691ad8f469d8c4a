"""Page 4, Overlap map: candidates and targets in activation space, and per-neuron firing overlap."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import activation_map, explore
from nait_core.selection import notes_warning, selected_lines

from . import charts, exactness, neuron_card, urlstate
from .session import Settings, Studio, combined_name, settings

COLOURS = ["score", "source", "selection"]
STATUS = ["all", "selected", "not selected"]
NEAREST = 10
URL_BOX_MAX = urlstate.URL_ROWS_MAX  # characters of a box's rows or area in the URL
TABLE_MAX = 2_000  # chosen records listed in the table (the download holds them all)
AREA_PARTS_MAX = 20  # boxes and lassos read from one selection (shift adds more)
CORNERS_MAX = 300  # lasso corners in all: each is tested on every point within its bounds; 300 fit a link


def _numbers(values) -> list[float] | None:
    """Browser-sent coordinates as floats at 6 significant digits (what the URL keeps, so a reload chooses
    exactly what the drawing did), or None when any is not a finite number."""
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    try:
        out = [float(f"{v:.6g}") for v in values]
    except OverflowError:  # an integer too large for a float
        return None
    return out if all(math.isfinite(v) for v in out) else None


def _thin(lasso: tuple, step: int) -> tuple:
    """Every `step`-th corner of a lasso (at least 3)."""
    return lasso if step <= 1 else lasso[::step] if len(lasso[::step]) >= 3 else lasso[:3]


@dataclass(frozen=True)
class Area:
    """The boxes (x0, x1, y0, y1) and lassos ((x, y), ...) drawn on a map larger than its dots, in the map's
    coordinates: what chooses records there, dots and density alike, and what `area=` keeps in the URL.
    `drawn_corners`: a browser lasso's corners before thinning to `CORNERS_MAX` (0: not thinned)."""

    boxes: tuple = ()
    lassos: tuple = ()
    drawn_corners: int = field(default=0, compare=False)

    def __bool__(self) -> bool:
        return bool(self.boxes or self.lassos)

    @classmethod
    def from_event(cls, selection) -> Area:
        """From Streamlit's selection state (its `box` and `lasso` lists, sent by the browser: anything that is
        not a box or polygon of finite numbers is left out; lassos with more than `CORNERS_MAX` corners in all
        are thinned evenly, as testing each corner costs time on every point)."""
        boxes, lassos = [], []
        shapes = lambda name: [s for s in list(selection.get(name) or [])[:AREA_PARTS_MAX] if isinstance(s, dict)]  # noqa: E731
        for box in shapes("box"):
            xs, ys = _numbers(box.get("x")), _numbers(box.get("y"))
            if xs and ys and len(xs) == len(ys) == 2:
                boxes.append((xs[0], xs[1], ys[0], ys[1]))
        for lasso in shapes("lasso"):
            xs, ys = _numbers(lasso.get("x")), _numbers(lasso.get("y"))
            if xs and ys and len(xs) == len(ys) >= 3:
                lassos.append(tuple(zip(xs, ys)))
        corners = sum(len(lasso) for lasso in lassos)
        step = math.ceil(corners / CORNERS_MAX)
        return cls(tuple(boxes), tuple(_thin(lasso, step) for lasso in lassos), corners if step > 1 else 0)

    def text(self) -> str | None:
        """For the URL: `b<x0>,<x1>,<y0>,<y1>` per box and `l<x>,<y>,…` per lasso, joined by `~`."""
        parts = ["b" + ",".join(f"{v:.6g}" for v in box) for box in self.boxes]
        parts += ["l" + ",".join(f"{v:.6g}" for point in lasso for v in point) for lasso in self.lassos]
        return "~".join(parts) or None

    @classmethod
    def parse(cls, text: str) -> Area:
        """`text`'s inverse (ValueError naming the part that is not a box or lasso, or saying what is too many)."""
        if len(text) > urlstate.URL_ROWS_MAX:
            raise ValueError(f"longer than the {urlstate.URL_ROWS_MAX:,} characters the map writes")
        boxes, lassos = [], []
        parts = text.split("~")
        if len(parts) > AREA_PARTS_MAX:
            raise ValueError(f"more than {AREA_PARTS_MAX} boxes and lassos")
        for part in parts:
            try:
                values = [float(v) for v in part[1:].split(",")]
            except ValueError:
                values = []
            if not all(math.isfinite(v) for v in values):
                values = []
            if part[:1] == "b" and len(values) == 4:
                boxes.append(tuple(values))
            elif part[:1] == "l" and len(values) % 2 == 0 and len(values) >= 6:
                lassos.append(tuple(zip(values[::2], values[1::2])))
            else:
                raise ValueError(f"{part[:40]!r} is not a box (b x0,x1,y0,y1) or a lasso (l x,y,x,y,x,y…)")
        if sum(len(lasso) for lasso in lassos) > CORNERS_MAX:
            raise ValueError(f"more than {CORNERS_MAX:,} lasso corners")
        return cls(tuple(boxes), tuple(lassos))

    def holds(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return activation_map.in_regions(x, y, self.boxes, self.lassos)

    def selections(self) -> list[dict]:
        """As plotly's `layout.selections`, so a reloaded chart shows what it chose."""
        shapes = [dict(type="rect", xref="x", yref="y", x0=x0, x1=x1, y0=y0, y1=y1) for x0, x1, y0, y1 in self.boxes]
        shapes += [
            dict(type="path", xref="x", yref="y", path="M" + "L".join(f"{x},{y}" for x, y in lasso) + "Z")
            for lasso in self.lassos
        ]
        return shapes


def points(studio: Studio, current: Settings) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(candidates drawn as dots, targets, every placed candidate) on the map: the dots with what can colour
    them (under `current` settings) and what their hover shows (a preview only on maps small enough to send
    one per point); every placed candidate as x, y and row (the dots too; more on a pool beyond the dots)."""
    coords = studio.map()
    selection = studio.selection(current)
    pool = coords[coords["group"] < 0]
    placed = pd.DataFrame({"x": pool["x"].to_numpy(), "y": pool["y"].to_numpy(), "row": pool["index"].to_numpy()})
    drawn = placed[pool["drawn"].to_numpy()]
    candidates = frame(studio, selection, drawn["row"].to_numpy())
    candidates.insert(0, "y", drawn["y"].to_numpy())
    candidates.insert(0, "x", drawn["x"].to_numpy())
    if len(candidates) <= charts.HOVER_TEXT_MAX:
        candidates["preview"] = previews(studio, candidates["row"])
    target_rows = coords[coords["group"] >= 0]
    targets = pd.DataFrame(
        {
            "x": target_rows["x"],
            "y": target_rows["y"],
            "group": [studio.target_names[g] for g in target_rows["group"]],
            "preview": [
                explore.preview(studio.targets[g].records[i], 100)
                for g, i in zip(target_rows["group"], target_rows["index"])
            ],
        }
    )
    return candidates, targets, placed


def frame(studio: Studio, selection, rows) -> pd.DataFrame:
    """These pool rows with their score, source and whether they are selected (what colours a dot)."""
    rows = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "row": rows,
            "score": selection.score[rows],
            "source": [studio.sources[i] for i in rows],  # not the whole list as an array (1M: 0.2 s)
            "selection": np.where(selection.selected[rows], "selected", "not selected"),
        }
    )


def previews(studio: Studio, rows) -> list[str]:
    return [explore.preview(studio.pool.records[i], 100) for i in rows]


def _compute(studio: Studio) -> None:
    """Compute the map (once per pool and targets: then cached in the store folder) with a progress bar: on a
    52,000-sample pool it streams the rows several times (PCA), then runs UMAP: minutes on a small CPU."""
    pool, targets = studio.neuron_store, studio.target_stores
    if activation_map.map_cached(pool, targets):
        return
    n = pool.n_samples + sum(t.n_samples for t in targets)
    bar = st.progress(0.0, f"Computing the map of {n:,} points (once: then read back from the store folder)…")
    activation_map.map_coordinates(pool, targets, progress=lambda fraction, text: bar.progress(fraction, text))
    bar.empty()


def scale_note(studio: Studio, drawn: int, placed: int | None = None) -> str:
    """What the map draws, said plainly: every candidate as a dot, or which ones as dots and the rest as
    density (`placed`: how many candidates are on the map in all)."""
    n = len(studio.pool)
    placed = drawn if placed is None else placed
    if studio.compact:
        return (
            f"Map of {exactness.sample_text(studio)} (exact values; {placed:,} of the {n:,} candidates) "
            f"and every target sample: a compact pool keeps no per-neuron values for the rest."
        )
    if drawn < placed:
        return (
            f"Every one of the {placed:,} candidates is on the map: a seeded random {drawn:,} as dots (UMAP was "
            f"fitted on them and every target sample), all {placed:,} as the grey density beneath (the "
            f"other {placed - drawn:,} placed on that fit by UMAP's transform). A box or lasso chooses every "
            f"candidate inside it, dots and density alike."
        )
    return f"Every one of the {n:,} candidates is drawn (and every target sample)."


def render(studio: Studio) -> None:
    st.title("Overlap map")
    st.caption(
        "Each point is a sample's token-mean activations over every neuron, reduced by PCA then UMAP "
        "(computed once per pool and targets, cached in the store folder). Close points fire alike."
    )
    exactness.note(
        studio,
        "the map's positions and the per-neuron overlap",
        "the scores and selection that colour the points",
    )
    current = settings()
    _compute(studio)
    candidates, targets, placed = points(studio, current)
    n = len(studio.pool)
    dense = len(placed) > len(candidates)  # a pool beyond the dots: density beneath, a box chooses by area
    note = scale_note(studio, len(candidates), len(placed))
    if len(candidates) > charts.HOVER_TEXT_MAX:
        note += " Hovering a dot shows its row and colour; choose dots to list their text."
    if len(placed) < n or dense:
        st.info(note)
    else:
        st.caption(note)
    urlstate.follow(
        urlstate.Choice("color", "map_color", COLOURS[0], urlstate.one_of(COLOURS)),
        urlstate.Choice("row", "map_row", None, urlstate.number_in(0, n - 1)),
        urlstate.Choice("box", "map_box", None, lambda v: urlstate.rows_from(v, n)),
        urlstate.Choice("area", "map_area", None, Area.parse),
    )
    if urlstate.new_url():  # a new chart: the browser's old box or lasso is not this URL's
        st.session_state["map_chart_version"] = st.session_state.get("map_chart_version", 0) + 1
        st.session_state["map_drawn"] = False
    cols = st.columns([3, 1])
    color = cols[0].radio("Colour candidates by", COLOURS, horizontal=True, key="map_color")
    row = cols[1].number_input(
        "Mark record",
        0,
        n - 1,
        key="map_row",
        placeholder="pool row",
        help="marks this pool record on the map with a star (a link `map?row=N` does too)",
    )
    urlstate.put("color", color, COLOURS[0])
    urlstate.put("row", row)
    keep = _filters(studio, current, placed["row"].to_numpy())
    if not keep.all():  # the map shows, and a box chooses among, the candidates that pass the filters
        placed = placed[keep]
        candidates = candidates[np.isin(candidates["row"].to_numpy(), placed["row"].to_numpy())]
        st.caption(f"{len(placed):,} of the {n:,} candidates pass these filters; the map shows only them.")
    if row is not None and not (placed["row"].to_numpy() == row).any():
        st.caption(f"Record {row} is not among the candidates on the map.")
    elif row is not None and dense and not (candidates["row"].to_numpy() == row).any():  # its star, on the density
        mark = placed[placed["row"] == row]
        extra = frame(studio, studio.selection(current), [row])
        extra.insert(0, "y", mark["y"].to_numpy())
        extra.insert(0, "x", mark["x"].to_numpy())
        if "preview" in candidates:
            extra["preview"] = previews(studio, [row])
        candidates = pd.concat([candidates, extra], ignore_index=True)
    # One key per colouring and filter (the traces, and so the selected points' curve and point numbers,
    # differ between them) and per URL followed. A new chart starts with no selection of its own: that is not
    # the user clearing theirs, so what was chosen stays chosen (among the points the map still shows).
    filtered = hashlib.sha256(repr((st.session_state.get("map_sources"), st.session_state.get("map_status"))).encode())
    key = f"map_chart_{color}_{filtered.hexdigest()[:8]}_{st.session_state.get('map_chart_version', 0)}"
    if st.session_state.get("map_chart_last") != key:
        st.session_state["map_chart_last"] = key
        st.session_state["map_drawn"] = False
        # What a new chart shows selected (a reload of `box=` or `area=`, Back, another colour): the chosen rows
        # or area as it first draws. Kept for the chart's life: a figure that changed under the user's own box
        # would make the browser redraw it.
        box, area = st.session_state.get("map_box") or (), st.session_state.get("map_area") or Area()
        st.session_state["map_chart_shown"] = (tuple(box), area)
    shown, shown_area = st.session_state["map_chart_shown"]
    if dense and shown_area:
        shown = _inside(studio, current, shown_area, placed)
    fig = charts.overlap_map(
        candidates,
        targets,
        color,
        "Candidates (dots) and targets (crosses) in activation space",
        ["row", "source", "score", "selection", "preview"],
        highlight=row,
        labels={"score": combined_name(settings(), len(studio.features))},
        chosen=shown,
        density=(placed["x"].to_numpy(), placed["y"].to_numpy()) if dense else None,
        selections=shown_area.selections() if dense else None,
    )
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso"), key=key)
    if dense:
        chosen = _chosen_area(studio, current, event, placed)
    else:
        drawn = chosen_rows(event.selection.points if event else [], charts.point_rows(fig))
        if drawn or st.session_state.get("map_drawn"):  # a box or lasso drawn, or one just cleared
            st.session_state["map_box"] = drawn or None
        st.session_state["map_drawn"] = bool(drawn)
        chosen = st.session_state.get("map_box") or []
        if len(placed) < n:  # a box kept from before a filter: its records the map still shows
            chosen = np.intersect1d(chosen, placed["row"].to_numpy()).tolist()
        box = urlstate.link_rows(st.session_state.get("map_box"))
        if box is None and chosen:  # a lasso over thousands of scattered dots of a large map
            st.caption(
                f"The {len(chosen):,} chosen records are too scattered to keep in the page's link (over "
                f"{URL_BOX_MAX:,} characters); they stay chosen in this session."
            )
        urlstate.put("box", box)
    _chosen(studio, chosen, placed, row)
    _overlap(studio, current)


def _filters(studio: Studio, current: Settings, rows: np.ndarray) -> np.ndarray:
    """The map's filters (source, selection), linked to what a box or lasso chooses: which of these pool
    `rows` pass."""
    sources = studio.kept(("map sources",), lambda: np.asarray(studio.sources))
    names = studio.kept(("map source names",), lambda: sorted(set(studio.sources)))
    urlstate.follow(
        urlstate.Choice("sources", "map_sources", [], lambda v: [urlstate.one_of(names)(x) for x in v.split(",")]),
        urlstate.Choice("status", "map_status", STATUS[0], urlstate.one_of(STATUS)),
    )
    cols = st.columns([3, 2])
    chosen = cols[0].multiselect("Only these sources", names, key="map_sources", placeholder="all sources")
    status = cols[1].radio("Only", STATUS, horizontal=True, key="map_status")
    urlstate.put("sources", ",".join(chosen) or None)
    urlstate.put("status", status, STATUS[0])
    keep = np.ones(len(rows), bool)
    if chosen:
        keep &= np.isin(sources[rows], chosen)
    if status != STATUS[0]:
        keep &= studio.selection(current).selected[rows] == (status == "selected")
    return keep


def _inside(studio: Studio, current: Settings, area: Area, placed: pd.DataFrame) -> np.ndarray:
    """The sorted pool rows of `placed` (the map as filtered now) inside `area`: tested once per area and
    filters (a lasso over a million points takes a second or two), not on every rerun."""
    status = st.session_state.get("map_status")
    filters = (tuple(st.session_state.get("map_sources") or ()), status, current if status != STATUS[0] else None)
    return studio.kept(
        ("map area", area, filters),
        lambda: np.sort(placed["row"].to_numpy()[area.holds(placed["x"].to_numpy(), placed["y"].to_numpy())]),
    )


def _chosen_area(studio: Studio, current: Settings, event, placed: pd.DataFrame) -> list[int]:
    """On a map beyond its dots: the area drawn (or the URL's), every placed candidate inside it, the area in
    the URL (`area=`, a few numbers per box or lasso corner). A link's `box=` rows, with no area, stay the
    choice (among the candidates the map shows)."""
    drawn = Area.from_event(event.selection) if event else Area()
    if drawn or st.session_state.get("map_drawn"):  # a box or lasso drawn, or one just cleared
        st.session_state["map_area"] = drawn or None
        st.session_state.pop("map_box", None)
    st.session_state["map_drawn"] = bool(drawn)
    area = st.session_state.get("map_area") or Area()
    if drawn.drawn_corners:
        st.caption(
            f"The lasso's {drawn.drawn_corners:,} corners were thinned evenly to "
            f"{sum(len(lasso) for lasso in drawn.lassos):,} (at most {CORNERS_MAX:,}): the records chosen are "
            f"those inside the thinned outline."
        )
    if not area:
        rows = st.session_state.get("map_box") or []
        urlstate.put("box", urlstate.link_rows(rows))
        return np.intersect1d(rows, placed["row"].to_numpy()).tolist() if rows else []
    text = area.text()
    if text and len(text) > URL_BOX_MAX:
        st.caption(
            f"This selection has too many corners to keep in the page's link ({len(text):,} characters); "
            f"its records stay chosen in this session."
        )
        text = None
    urlstate.put("area", text)
    return _inside(studio, current, area, placed).tolist()


def _clear() -> None:
    """Forget the box or lasso (a chart drawn anew: one restored from a link has no selection to clear)."""
    for name in ("map_area", "map_box"):
        st.session_state.pop(name, None)
    st.session_state["map_chart_version"] = st.session_state.get("map_chart_version", 0) + 1


def nearest(candidates: pd.DataFrame, row: int, k: int = NEAREST) -> list[int]:
    """Pool row `row` and the `k` candidates closest to it on the map (2-D distance), nearest first."""
    xy = candidates[["x", "y"]].to_numpy()
    at = candidates["row"].to_numpy() == row
    if not at.any():
        return []
    distance = np.linalg.norm(xy - xy[at][0], axis=1)
    return [int(r) for r in candidates["row"].to_numpy()[np.argsort(distance, kind="stable")[: k + 1]]]


def linked(
    candidates: pd.DataFrame, rows: list[int], score: str = "score", studio: Studio | None = None
) -> pd.DataFrame:
    """These candidates as a table whose `row` opens the record on the Sample explorer and whose `map` column
    marks it on this map; the score column named `score` (what it is: `combined_name`); the previews read
    from `studio`'s records where the candidates carry none (a large map)."""
    table = candidates.set_index("row").loc[rows, ["source", "score", "selection"]].reset_index()
    table["preview"] = (
        candidates.set_index("row").loc[rows, "preview"].to_numpy()
        if "preview" in candidates
        else previews(studio, rows)
    )
    table = table.rename(columns={"score": score})
    table.insert(1, "map", [urlstate.map_link(r) for r in rows])
    return neuron_card.with_record_links(table)


LINKS = {
    "row": neuron_card.record_link_column(),
    "map": st.column_config.LinkColumn("map", display_text="mark", help="marks this record on the map"),
    "preview": st.column_config.TextColumn(width="large"),
}


def chosen_rows(points: list[dict], rows_by_curve: list[np.ndarray]) -> list[int]:
    """The pool rows of the selected candidate points (targets and anything unknown left out). A point is
    found by its curve_number and point_index in our own arrays: its echoed customdata is not trusted."""
    chosen = set()
    for point in points:
        curve, index = point.get("curve_number"), point.get("point_index", point.get("point_number"))
        if not isinstance(curve, int) or not isinstance(index, int) or not 0 <= curve < len(rows_by_curve):
            continue
        rows = rows_by_curve[curve]
        if 0 <= index < len(rows) and rows[index] >= 0:
            chosen.add(int(rows[index]))
    return sorted(chosen)


def _use(rows: list[int] | None) -> None:
    """Set (or clear) the map filter in a button callback, so the rerun the click starts already shows it."""
    if rows is None:
        st.session_state.pop("map_filter", None)
    else:
        st.session_state["map_filter"] = rows


def _table(studio: Studio, rows: list[int]) -> pd.DataFrame:
    """These pool records as the linked table, scored under the current settings."""
    return linked(
        frame(studio, studio.selection(settings()), rows), rows, combined_name(settings(), len(studio.features)), studio
    )


def _chosen(studio: Studio, chosen: list[int], placed: pd.DataFrame, row: int | None) -> None:
    if chosen:
        listed = chosen[:TABLE_MAX]
        st.markdown(
            f"**{len(chosen):,} candidates chosen** with the box or lasso (click a row number to open the "
            f"record on the Sample explorer)"
            + (
                f"; the first {len(listed):,} by row are listed, the download holds all"
                if len(listed) < len(chosen)
                else ""
            )
        )
        st.dataframe(
            _table(studio, listed),
            hide_index=True,
            width="stretch",
            height=220,
            key="map_chosen",
            column_config=LINKS,
        )
        st.button("Clear the box or lasso", key="map_clear_area", on_click=_clear)
        st.button(
            f"Use these {len(chosen):,} records on the other pages",
            key="map_use",
            on_click=_use,
            args=(chosen,),
            help="filters the Sample explorer, and adds them as a group to the Neuron explorer and to "
            "the per-neuron overlap below",
        )
        _download(studio, chosen)
    else:
        st.caption("Draw a box or lasso on the map to choose candidates.")
        around = nearest(placed, row) if row is not None else []
        if around:  # nothing chosen: the marked record and its neighbours on the map say what its region holds
            st.markdown(
                f"**Record {row} and its {len(around) - 1} nearest candidates on the map** (click a row "
                f"number to open the record on the Sample explorer)"
            )
            st.dataframe(
                _table(studio, around),
                hide_index=True,
                width="stretch",
                height=220,
                key="map_nearest",
                column_config=LINKS,
            )
    current = st.session_state.get("map_filter")
    if current is not None:
        kept = urlstate.link_rows(current) is not None
        st.caption(
            f"{len(current):,} records chosen here filter the Sample explorer and form a group on the "
            f"Neuron explorer and in the overlap below"
            + ("." if kept else " (too scattered for the pages' links: they stay chosen in this session).")
        )
        st.button("Clear that filter", key="map_clear", on_click=_use, args=(None,))


def chosen_lines(records, rows: list[int]) -> tuple[bytes, list[str]]:
    """(JSONL bytes, notes): these pool records in input order, by the export's own `selected_lines` (each
    record's input line byte for byte, else its fields, with a note for each value JSON cannot hold)."""
    lines, notes = selected_lines(records, SimpleNamespace(indices=sorted(rows)))  # it reads only .indices
    return "".join(f"{line}\n" for line in lines).encode("utf-8"), notes


def _download(studio: Studio, chosen: list[int]) -> None:
    """A download of the chosen records (a file, never a path written: the export's own rules)."""
    made = st.session_state.get("map_lines")
    digest = hashlib.sha256(np.asarray(chosen, np.int64).tobytes()).hexdigest()
    if made is None or made[0] != (str(studio.pool_store.path), digest):  # 100,000 records: 0.6 s, so once per choice
        made = ((str(studio.pool_store.path), digest), *chosen_lines(studio.pool.records, chosen))
        st.session_state["map_lines"] = made
    _, data, notes = made
    st.download_button(
        f"Download these {len(chosen):,} records (JSONL)",
        data,
        file_name=f"{studio.pool.name}-map-{len(chosen)}-chosen.jsonl",
        mime="application/jsonl",
        key="map_download",
        on_click="ignore",  # a click does not rerun: the file stays the one made for this selection
    )
    if notes:  # never a silent change: in the export's own words
        headline, details = notes_warning(notes)
        st.warning(headline + "\n\n" + "\n".join(f"- {line}" for line in details))


def _overlap(studio: Studio, current: Settings) -> None:
    st.subheader("Per-neuron overlap")
    cols = st.columns([2, 1])
    names = studio.target_names
    urlstate.follow(
        urlstate.Choice("target", "map_feature", names[0], urlstate.one_of(names)),
        urlstate.Choice("per_layer", "map_per_layer", 1, urlstate.number_in(1, 5)),
    )
    target = cols[0].selectbox("Target feature", names, key="map_feature")
    per_layer = cols[1].number_input("Top neurons per layer", 1, 5, key="map_per_layer")
    urlstate.put("target", target, names[0])
    urlstate.put("per_layer", int(per_layer), 1)
    g = studio.target_names.index(target)
    threshold = current.options.fire_threshold
    feature = studio.features[g]
    every = studio.thresholds(threshold)
    top = explore.firing_top_neurons(
        explore.feature_weights(feature, studio.pool_mean), feature.profile, every, per_layer=int(per_layer)
    )
    if top.empty:
        st.info(f"No neuron of {target} fires at threshold {threshold}: lower the threshold on Select & export.")
        return
    neurons = list(zip(top["layer"], top["index"]))
    thresholds = every[top["layer"], top["index"]]
    pool = studio.pool_neuron_values(neurons)  # a compact pool: its exact sample's
    selected = studio.selection(current).selected[studio.neuron_rows]
    groups = {
        f"targets ({target})": studio.neuron_values(studio.target_stores[g], neurons),
        "candidates": pool,
        "selected": pool[selected],
        "rest": pool[~selected],
    }
    if st.session_state.get("map_filter") is not None:
        groups["chosen on the map"] = pool[studio.exact_positions(st.session_state["map_filter"])]
    shares = explore.firing_shares(groups, thresholds)
    shares.columns = top["neuron"]
    st.plotly_chart(
        charts.share_heatmap(
            shares, f"Share of samples firing the top neurons of {target} that it fires (threshold {threshold})"
        ),
        key="map_shares",
    )
    st.markdown(
        "Open a neuron of this chart on the Neuron explorer: "
        + " · ".join(f"[{n}]({urlstate.neuron_link(n)})" for n in top["neuron"])
    )
