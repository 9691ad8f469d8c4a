"""Plotly figures for the app: every chart has a title, axis labels and hover text. No Streamlit here."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import plotly.graph_objects as go

HEIGHT = 380


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        legend_title_text="",
    )
    return fig


def score_histogram(scores: dict[str, np.ndarray], cut: float | None, title: str, x_label: str) -> go.Figure:
    """Overlaid score histograms; a dashed line marks the cut (records right of it are kept). Binned here
    (60 bins over the scores' range), so the figure holds 60 counts per series, not a million scores."""
    fig = go.Figure()
    finite = [v[np.isfinite(v)] for v in scores.values()]
    low = min((float(v.min()) for v in finite if len(v)), default=0.0)
    high = max((float(v.max()) for v in finite if len(v)), default=1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, 61)
    for name, values in zip(scores, finite):
        counts, _ = np.histogram(values, edges)
        fig.add_bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counts,
            width=np.diff(edges),
            name=name,
            opacity=0.6,
            customdata=np.column_stack([edges[:-1], edges[1:]]),
            hovertemplate=f"{name}<br>score %{{customdata[0]:.4g}} … %{{customdata[1]:.4g}}<br>%{{y}} records"
            "<extra></extra>",
        )
    fig.update_layout(barmode="overlay", bargap=0)
    if cut is not None and np.isfinite(cut):
        fig.add_vline(x=cut, line_dash="dash", line_color="red", annotation_text="cut: kept →")
    return _layout(fig, title, x_label, "records")


def layer_contributions(per_target: dict[str, np.ndarray], title: str) -> go.Figure:
    """Grouped bars: each layer's share of the score, one bar per target."""
    fig = go.Figure()
    for name, values in per_target.items():
        fig.add_bar(
            x=np.arange(len(values)),
            y=values,
            name=name,
            hovertemplate=f"{name}<br>layer %{{x}}<br>contribution %{{y:.4f}}<extra></extra>",
        )
    return _layout(fig, title, "layer", "contribution to the score")


def layer_neuron_heatmap(
    z: np.ndarray, title: str, value_label: str, limits: tuple[float, float] | None = None
) -> go.Figure:
    """A [layers, neurons] heatmap with a diverging scale, centred on 0 or between the given `limits`
    (values beyond them saturate)."""
    if limits is None:
        limit = float(np.nanmax(np.abs(z))) or 1.0
        limits = (-limit, limit)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorscale="RdBu_r",
            zmin=limits[0],
            zmax=limits[1],
            colorbar_title=value_label,
            hovertemplate="layer %{y}, neuron %{x}<br>" + value_label + " %{z:.3f}<extra></extra>",
        )
    )
    return _layout(fig, title, "neuron index", "layer", height=460)


def value_histogram(groups: dict[str, np.ndarray], threshold: float | None, title: str, x_label: str) -> go.Figure:
    """Overlaid histograms normalised to shares, so groups of different sizes compare."""
    fig = go.Figure()
    for name, values in groups.items():
        fig.add_histogram(
            x=values,
            name=name,
            opacity=0.6,
            histnorm="probability",
            nbinsx=50,
            hovertemplate=f"{name}<br>activation %{{x}}<br>share %{{y:.1%}}<extra></extra>",
        )
    fig.update_layout(barmode="overlay")
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="black", annotation_text="fires above")
    return _layout(fig, title, x_label, "share of samples")


HOVER_TEXT_MAX = 5_000  # maps with more points hover a point's row and colour only (52,000 texts: 5 MB a rerun)


def overlap_map(
    candidates: pd.DataFrame,
    targets: pd.DataFrame,
    color: str,
    title: str,
    hover: list[str],
    highlight: int | None = None,
    labels: dict[str, str] | None = None,
    chosen: Collection[int] = (),
    density: tuple[np.ndarray, np.ndarray] | None = None,
    selections: list[dict] | None = None,
) -> go.Figure:
    """The 2-D map: candidates as WebGL dots (Scattergl: 52,000 draw and select smoothly) coloured by `color`
    (`labels`: shown names of columns, for the colour bar and the hover), each target set as crosses, and the
    pool row `highlight` (when it is on the map) as a large ringed star drawn last, above the rest. Each
    candidate trace sends only what it draws: float32 x, y (and score colour) and its pool rows in
    customdata, as typed arrays; the hover shows the row and colour, and the `hover` columns too up to
    HOVER_TEXT_MAX points. `point_rows` maps a box or lasso selection back to records. The `chosen` rows are
    drawn selected (the rest dimmed), as right after a box or lasso: a reload of a link with `box=` shows them.
    `density` (x, y of every placed candidate, a pool larger than the dots) is drawn beneath as grey cells
    shaded by their count (log scale), binned here: `DENSITY_BINS`² counts sent, not a million points.
    `selections`: boxes and lassos shown drawn (plotly's `layout.selections`), as a reload of `area=` has them."""
    labels = labels or {}
    continuous = pd.api.types.is_float_dtype(candidates[color])
    shown = (
        [c for c in hover if c not in ("row", color) and c in candidates] if len(candidates) <= HOVER_TEXT_MAX else []
    )
    text = None
    if shown:  # one string per point: "source: a<br>score: 0.12<br>…"
        parts = [
            f"{labels.get(c, c)}: "
            + (candidates[c].map("{:.4g}".format) if c == "score" else candidates[c].astype(str))
            for c in shown
        ]
        text = parts[0].str.cat(parts[1:], sep="<br>").to_numpy()
    value = f"{labels.get(color, color)}: " + ("%{marker.color:.4g}" if continuous else "%{fullData.name}")
    template = "record %{customdata}<br>" + value + ("<br>%{text}" if shown else "") + "<extra></extra>"
    size = 6 if len(candidates) <= 10_000 else 4  # smaller dots keep 52,000 apart
    fig = go.Figure()
    if density is not None:
        fig.add_trace(density_cells(*density))
    groups = (
        [(labels.get(color, color), np.ones(len(candidates), bool))]
        if continuous
        else [(str(v), (candidates[color] == v).to_numpy()) for v in pd.unique(candidates[color])]
    )
    chosen = np.asarray(chosen if isinstance(chosen, np.ndarray) else list(chosen), dtype=np.int64)
    for name, at in groups:
        part = candidates[at]
        # A plain list: Plotly sends NumPy arrays as typed arrays, which plotly.js does not read for selectedpoints.
        picked = np.flatnonzero(np.isin(part["row"].to_numpy(), chosen)).tolist() if len(chosen) else None
        fig.add_trace(
            go.Scattergl(
                x=part["x"].to_numpy(np.float32),
                y=part["y"].to_numpy(np.float32),
                mode="markers",
                name=name,
                customdata=part["row"].to_numpy(np.int32),
                text=None if text is None else text[at],
                hovertemplate=template,
                marker=dict(size=size, opacity=0.75)
                | (dict(color=part[color].to_numpy(np.float32), coloraxis="coloraxis") if continuous else {}),
                showlegend=not continuous,
                selectedpoints=picked,
            )
        )
    for name, points in targets.groupby("group", sort=False):
        fig.add_scatter(
            x=points["x"],
            y=points["y"],
            mode="markers",
            name=f"target {name}",
            marker=dict(symbol="x", size=7, line_width=1),
            customdata=np.full(len(points), -1, np.int32),
            text=points["preview"],
            hovertemplate=f"target {name}<br>%{{text}}<extra></extra>",
        )
    marked = candidates[candidates["row"] == highlight] if highlight is not None else candidates.iloc[:0]
    if len(marked):  # its customdata is its row: a box around it chooses that record, as its dot does
        fig.add_scatter(
            x=marked["x"],
            y=marked["y"],
            mode="markers",
            name=f"record {highlight}",
            marker=dict(symbol="star", size=20, color="#e4572e", line=dict(width=2, color="black")),
            customdata=np.array([highlight], np.int32),
            text=marked["preview"] if "preview" in marked else None,
            hovertemplate=f"record {highlight}" + ("<br>%{text}" if "preview" in marked else "") + "<extra></extra>",
        )
    fig.update_layout(
        dragmode="lasso",
        legend=dict(orientation="h", y=-0.12),
    )
    if selections:
        fig.update_layout(selections=selections)
    if continuous:
        fig.update_layout(coloraxis=dict(colorscale="Viridis", colorbar=dict(title=labels.get(color, color), x=1.02)))
    return _layout(fig, title, "UMAP 1", "UMAP 2", height=580)


DENSITY_BINS = 150


def density_cells(x: np.ndarray, y: np.ndarray) -> go.Heatmap:
    """Every placed candidate as counts in `DENSITY_BINS`² cells (empty cells left clear), grey by log10
    count so sparse regions still show; the hover gives a cell's count."""
    counts, x_edges, y_edges = np.histogram2d(x, y, bins=DENSITY_BINS)
    counts = counts.T.astype(np.int64)  # rows: y bins, as a heatmap's z
    with np.errstate(divide="ignore"):
        shade = np.where(counts > 0, np.log10(counts), np.nan).astype(np.float32)
    return go.Heatmap(
        z=shade,
        x=((x_edges[:-1] + x_edges[1:]) / 2).astype(np.float32),
        y=((y_edges[:-1] + y_edges[1:]) / 2).astype(np.float32),
        customdata=counts.tolist(),  # plain lists: a 2-D typed array is not read as a heatmap's customdata
        colorscale=[[0, "#e6e6e6"], [1, "#4d4d4d"]],
        zmin=0,
        showscale=False,
        name="every candidate (density)",
        hovertemplate="%{customdata:,} candidates in this cell<extra></extra>",
        showlegend=True,
    )


def point_rows(fig: go.Figure) -> list[np.ndarray]:
    """For each trace of an `overlap_map` figure, the pool row of each of its points (-1: a target sample;
    none: the density cells), read from the figure as built here, so a selected point's (curve_number,
    point_index) finds its row without trusting what the browser echoes back."""
    return [
        np.empty(0, np.int64) if t.type == "heatmap" else np.asarray(t.customdata, dtype=np.int64).reshape(-1)
        for t in fig.data
    ]


def share_heatmap(shares: pd.DataFrame, title: str) -> go.Figure:
    """Rows: groups (targets, candidates, selected, rest); columns: neurons; cells: share firing."""
    fig = go.Figure(
        go.Heatmap(
            z=shares.values,
            x=list(shares.columns),
            y=list(shares.index),
            zmin=0,
            zmax=1,
            colorscale="Blues",
            colorbar_title="share firing",
            hovertemplate="%{y}<br>neuron %{x}<br>%{z:.1%} of samples fire<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, "neuron (layer.index)", "group")


def matrix_heatmap(
    matrix: pd.DataFrame, title: str, value_label: str, zmin: float, zmax: float, hover: str, axis: str = "target"
) -> go.Figure:
    """A labelled square matrix (targets × targets, methods × methods) with the values written in the cells."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix.values,
            x=list(matrix.columns),
            y=list(matrix.index),
            zmin=zmin,
            zmax=zmax,
            colorscale="Viridis",
            colorbar_title=value_label,
            text=np.round(matrix.values, 2),
            texttemplate="%{text}",
            hovertemplate=hover + "<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, axis, axis)


def composition_bars(counts: pd.DataFrame, title: str) -> go.Figure:
    """Stacked bars: for each target's selection, how many records come from each source."""
    fig = go.Figure()
    for source in counts.columns:
        fig.add_bar(
            x=list(counts.index),
            y=counts[source],
            name=source,
            hovertemplate=f"%{{x}}<br>{source}: %{{y}} records<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, title, "target", "selected records")


def token_activation_line(tokens: list[str], values: np.ndarray, response_start: int, title: str) -> go.Figure:
    """A neuron's activation at each token position; the response part is shaded."""
    fig = go.Figure(
        go.Scatter(
            x=np.arange(len(values)),
            y=values,
            mode="lines+markers",
            text=tokens,
            hovertemplate="token %{x}: %{text}<br>activation %{y:.3f}<extra></extra>",
        )
    )
    fig.add_vrect(
        x0=response_start - 0.5,
        x1=len(values) - 0.5,
        fillcolor="green",
        opacity=0.08,
        annotation_text="response",
        line_width=0,
    )
    return _layout(fig, title, "token position", "activation", height=300)


def score_bins(rows: list[dict], title: str) -> go.Figure:
    """Held-out loss per score bin (`nait_core.eval.bin_rows`), one line of markers per method. A bar is the
    paired 95 % interval of the bin's difference from random, drawn around the bin's loss, and random's loss
    is the dashed line: a bar that crosses the line cannot be told from random over these problems."""
    fig = go.Figure()
    shown = [r for r in rows if r["loss"] is not None]
    for method in dict.fromkeys(r["method"] for r in shown):
        mine = [r for r in shown if r["method"] == method]
        paired = all(r["difference"] is not None for r in mine)
        fig.add_scatter(
            x=[r["bin"] for r in mine],
            y=[r["loss"] for r in mine],
            mode="lines+markers",
            name=method,
            error_y=dict(
                type="data",
                symmetric=False,
                array=[r["high"] - r["difference"] for r in mine],
                arrayminus=[r["difference"] - r["low"] for r in mine],
            )
            if paired
            else None,
            customdata=[
                [r["train_records"] or 0, r["difference"] or 0.0, r["low"] or 0.0, r["high"] or 0.0] for r in mine
            ],
            hovertemplate=f"{method} %{{x}} bin: loss %{{y:.4f}}, %{{customdata[0]}} records"
            + ("<br>− random %{customdata[1]:+.4f} [%{customdata[2]:+.4f}, %{customdata[3]:+.4f}]" if paired else "")
            + "<extra></extra>",
        )
    reference = next((r["against_loss"] for r in shown if r["against_loss"] is not None), None)
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dash", line_color="grey", annotation_text="random")
    fig.update_xaxes(categoryorder="array", categoryarray=["top", "middle", "bottom"])
    return _layout(fig, title, "score bin (by the method's own ranking)", "held-out loss (lower is better)")
