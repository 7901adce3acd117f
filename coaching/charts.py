"""Figure builders: take DataFrames, return plotly figures. They never render (pages do)."""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from coaching.anonymise import MIN_OBS, suppress_small_cells

log = logging.getLogger(__name__)

# Orange (below Proficient) -> near white at 3 -> blue (above): a diverging pair that stays
# distinguishable with the common colour-vision deficiencies (ColorBrewer PuOr/RdBu family).
SCALE = [
    [0.0, "#b35806"],
    [0.333, "#f1a340"],
    [0.6667, "#f7f7f7"],
    [0.8333, "#92c5de"],
    [1.0, "#2166ac"],
]
ZMIN, ZMID, ZMAX = 1, 3, 4


def _cell_text(mean, n, suppressed: bool) -> str:
    if suppressed:
        return f"n<{MIN_OBS}"
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    return f"{mean:.2f}<br>n={int(n)}"


def heatmap_figure(cells: pd.DataFrame, *, meeting_mode: bool) -> go.Figure:
    """Mean score per (row, domain) as a heatmap centred on 3; cell text '2.84<br>n=12'.
    In meeting mode cells under 3 observations are blank with the text 'n<3' (labels are taken as
    given: anonymise them first)."""
    if meeting_mode and "suppressed" not in cells.columns:
        cells = suppress_small_cells(cells)
    rows = list(dict.fromkeys(cells["row_label"].tolist()))
    cols = list(dict.fromkeys(cells["domain_name"].tolist()))
    ri = {r: i for i, r in enumerate(rows)}
    ci = {c: i for i, c in enumerate(cols)}
    z = np.full((len(rows), len(cols)), np.nan)
    text = [["" for _ in cols] for _ in rows]
    suppressed = cells["suppressed"] if "suppressed" in cells.columns else pd.Series(False, index=cells.index)
    for row_label, dom, mean, n, sup in zip(
        cells["row_label"], cells["domain_name"], cells["mean"], cells["n_obs"], suppressed, strict=True
    ):
        i, j = ri[row_label], ci[dom]
        if not sup and mean is not None and not pd.isna(mean):
            z[i, j] = float(mean)
        text[i][j] = _cell_text(mean, n, bool(sup))
    size = 20 if meeting_mode else 12
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=cols,
            y=rows,
            text=text,
            texttemplate="%{text}",
            textfont={"size": size},
            colorscale=SCALE,
            zmin=ZMIN,
            zmax=ZMAX,
            zmid=ZMID,
            hoverongaps=False,
            colorbar={"title": {"text": "Mean score"}, "tickvals": [1, 2, 3, 4]},
            xgap=2,
            ygap=2,
        )
    )
    # Heatmap traces cannot be selected in plotly.js; an invisible marker on each cell makes a click
    # select it (the page reads the selection; a selectbox does the same for keyboards).
    at_x = [c for _ in rows for c in cols]
    at_y = [r for r in rows for _ in cols]
    fig.add_trace(
        go.Scatter(
            x=at_x,
            y=at_y,
            mode="markers",
            marker={"size": 28, "opacity": 0, "color": "#000"},
            text=[t for row in text for t in row],
            hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>",
            showlegend=False,
            name="cells",
        )
    )
    fig.data[0].hoverinfo = "skip"
    fig.update_layout(
        font={"size": size},
        clickmode="event+select",
        height=max(320, 120 + (56 if meeting_mode else 36) * len(rows)),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        # Fixed ranges: autorange would pad for the overlay markers and leave a blank band.
        xaxis={"side": "top", "tickfont": {"size": size}, "range": [-0.5, len(cols) - 0.5]},
        yaxis={"type": "category", "tickfont": {"size": size}, "range": [len(rows) - 0.5, -0.5]},
    )
    return fig


# Okabe-Ito: eight colours that stay distinct with colour-vision deficiencies (one per domain).
LINE_COLOURS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]


def trend_figure(trend: pd.DataFrame, *, meeting_mode: bool = False) -> go.Figure:
    """Each domain's monthly mean as a line, with the Proficient line at 3."""
    fig = go.Figure()
    for i, (name, part) in enumerate(trend.groupby("domain_name", sort=False)):
        fig.add_trace(
            go.Scatter(
                line={"color": LINE_COLOURS[i % len(LINE_COLOURS)]},
                marker={"symbol": i % 8},
                x=part["month"],
                y=part["mean"],
                mode="lines+markers",
                name=str(name),
                customdata=part["n_obs"],
                hovertemplate="%{x}: %{y:.2f} (n=%{customdata})<extra>" + str(name) + "</extra>",
            )
        )
    fig.add_hline(y=3, line_dash="dot", line_color="#555")
    fig.update_layout(
        font={"size": 18 if meeting_mode else 12},
        yaxis={"range": [1, 4], "title": "Mean score", "tickfont": {"size": 18 if meeting_mode else 12}},
        xaxis={"title": "Month", "type": "category", "tickfont": {"size": 18 if meeting_mode else 12}},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def effort_scatter(df: pd.DataFrame) -> go.Figure:
    """Each teacher's first observation score against the observations they received."""
    fig = go.Figure(
        go.Scatter(
            x=df["first_score"],
            y=df["observations"],
            mode="markers",
            marker={"size": 9, "opacity": 0.7, "color": "#2166ac"},
            hovertemplate="first score %{x:.2f}<br>%{y} observations<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis={"title": "First observation score", "range": [0.8, 4.2]},
        yaxis={"title": "Observations in the window"},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def domain_bar(domain_means: dict[str, float]) -> go.Figure:
    """Domains ranked strongest to weakest, as horizontal bars."""
    ranked = sorted(domain_means.items(), key=lambda kv: kv[1], reverse=True)
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in ranked],
            y=[k for k, _ in ranked],
            orientation="h",
            marker={
                "color": [v for _, v in ranked],
                "colorscale": SCALE,
                "cmin": ZMIN,
                "cmax": ZMAX,
                "cmid": ZMID,
            },
            text=[f"{v:.2f}" for _, v in ranked],
        )
    )
    fig.update_layout(
        xaxis={"range": [1, 4], "title": "Mean score"},
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


@functools.cache
def png_export_works() -> bool:
    """Whether plotly can write PNG here (kaleido installed and able to start its browser)."""
    try:
        import kaleido  # noqa: F401

        go.Figure(go.Scatter(x=[1], y=[1])).to_image(format="png")
    except Exception as exc:  # noqa: BLE001 - any failure means: offer HTML instead
        log.info("PNG export unavailable (%s); offering HTML downloads", exc)
        return False
    return True


def chart_format() -> tuple[str, str]:
    """(file extension, MIME type) of chart downloads on this machine: PNG where plotly can export
    offline, otherwise a self-contained HTML file."""
    return ("png", "image/png") if png_export_works() else ("html", "text/html")


def figure_bytes(fig: go.Figure) -> bytes:
    """The chart as a file in `chart_format()`: PNG, or HTML with plotly.js embedded (never a CDN link)."""
    if png_export_works():
        return fig.to_image(format="png", scale=2)
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")


def _flat(figures: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("domain_means", "domain_means_by_code"):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, dict):
            out.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            out[name] = value
    return out


def figures_table(rows: list[dict]) -> pd.DataFrame:
    """Program figures (one dict per school or overall) as one flat row each, for tables and CSV."""
    return pd.DataFrame([_flat(r) for r in rows])


def ranked_domains(domain_means: dict[str, float]) -> pd.DataFrame:
    """Domains from strongest to weakest mean score."""
    ranked = sorted(domain_means.items(), key=lambda kv: kv[1], reverse=True)
    return pd.DataFrame(ranked, columns=["domain", "mean"]).assign(rank=lambda d: range(1, len(d) + 1))
