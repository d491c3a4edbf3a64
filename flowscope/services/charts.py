"""PNG charts with matplotlib (Agg): line, stacked area, ranked bar, pie, heatmap and sankey.

Pure rendering: callers hand over numbers that are already final (the same numbers go in the
tool's data table) plus a unit; this module only draws them and formats units for people
(bits/s with SI prefixes, not raw byte counts).
"""

from __future__ import annotations

import io
import math
from datetime import datetime
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import PathPatch, Rectangle  # noqa: E402
from matplotlib.path import Path  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

PALETTE = ("#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#76B7B2", "#EDC948", "#B07AA1", "#FF9DA7",
           "#9C755F", "#2F6690", "#D37295", "#8CD17D")
OTHER = "#BAB0AC"
INK = "#2B2B2B"
MUTED = "#6B6B6B"
GRID = "#E6E6E6"
WIDTH, HEIGHT, DPI = 11.0, 5.6, 100
MAX_LEGEND = 12

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": "#BFBFBF",
    "axes.labelcolor": INK,
    "axes.titlesize": 13,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


# --- units ----------------------------------------------------------------------------------------
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_value(v: float | None, unit: str = "", digits: int = 3) -> str:
    """1234567 bit/s -> '1.23 Mbit/s'; 1500 bytes -> '1.5 kB'; 42 -> '42'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    unit = {"bytes": "B", "bits": "bit"}.get(unit, unit)
    joiner = "" if unit in ("B", "bit/s", "bit", "B/s") or unit.startswith("bit") else " "
    if unit == "%":
        return f"{v:.{max(digits - 2, 0)}f}%" if abs(v) < 100 else f"{v:.0f}%"
    a = abs(v)
    for scale, prefix in _SI:
        if a >= scale:
            num = f"{v / scale:.{digits}g}"
            return f"{num} {prefix}{unit}".rstrip() if joiner == "" else f"{num}{prefix} {unit}".rstrip()
    if isinstance(v, float) and not v.is_integer():
        num = f"{v:.{digits}g}"
    else:
        num = f"{int(v)}"
    return f"{num} {unit}".rstrip()


def _axis_formatter(unit: str) -> FuncFormatter:
    return FuncFormatter(lambda v, _pos: format_value(v, unit, 3))


# --- figure scaffolding ------------------------------------------------------------------------------
def _figure(title: str, subtitle: str = "", size: tuple[float, float] | None = None) -> Figure:
    plt.rcParams.update(_STYLE)
    fig = Figure(figsize=size or (WIDTH, HEIGHT), dpi=DPI, facecolor="white")
    fig.text(0.012, 0.975, _clip(title, 110), fontsize=14, fontweight="bold", color=INK, va="top", ha="left")
    if subtitle:
        fig.text(0.012, 0.915, _clip(subtitle, 170), fontsize=9.5, color=MUTED, va="top", ha="left")
    fig.text(0.995, 0.008, "flowscope", fontsize=7.5, color="#A0A0A0", ha="right", va="bottom")
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _clip(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _colors(labels: Sequence[str]) -> list[str]:
    out, i = [], 0
    for lab in labels:
        if lab == "other":
            out.append(OTHER)
        else:
            out.append(PALETTE[i % len(PALETTE)])
            i += 1
    return out


def _no_data(ax, text: str = "No data in this time range") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=13, color=MUTED)
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def _cap(labels: list[str], values: list[list[float]], n: int) -> tuple[list[str], list[list[float]]]:
    """Keep the n largest series (by total), add the rest up as 'other'."""
    if len(labels) <= n:
        return labels, values
    order = sorted(range(len(labels)), key=lambda i: -sum(v or 0 for v in values[i]))
    keep = [i for i in order[:n] if labels[i] != "other"][: n - 1]
    rest = [i for i in range(len(labels)) if i not in keep]
    other = [sum((values[i][k] or 0) for i in rest) for k in range(len(values[0]))]
    return [labels[i] for i in keep] + ["other"], [values[i] for i in keep] + [other]


# --- timeseries ----------------------------------------------------------------------------------
def timeseries(title: str, times: Sequence[datetime], series: Sequence[tuple[str, Sequence[float | None]]],
               unit: str, subtitle: str = "", stacked: bool = False, y_label: str | None = None) -> bytes:
    """Line chart, or stacked area when `stacked`; the legend keeps the top series plus 'other'."""
    fig = _figure(title, subtitle)
    ax = fig.add_axes((0.095, 0.13, 0.68 if len(series) > 1 else 0.88, 0.72))
    labels = [s[0] for s in series]
    values = [[(v if v is not None else math.nan) for v in s[1]] for s in series]
    if not times or not series or all(all(math.isnan(v) for v in vals) for vals in values):
        _no_data(ax)
        return _png(fig)
    if stacked:
        labels, values = _cap(labels, [[0 if math.isnan(v) else v for v in vals] for vals in values], MAX_LEGEND)
    elif len(labels) > MAX_LEGEND:
        order = sorted(range(len(labels)), key=lambda i: -sum(v for v in values[i] if not math.isnan(v)))
        keep = order[:MAX_LEGEND]
        labels, values = [labels[i] for i in keep], [values[i] for i in keep]
    colors = _colors(labels)
    x = mdates.date2num(list(times))
    if stacked:
        ax.stackplot(x, values, labels=labels, colors=colors, alpha=0.9, linewidth=0)
    else:
        for lab, vals, col in zip(labels, values, colors):
            marker = "o" if len(x) <= 30 else None
            ax.plot(x, vals, label=lab, color=col, linewidth=1.8, marker=marker, markersize=3.5)
            if len(labels) == 1:
                ax.fill_between(x, vals, color=col, alpha=0.12)
    ax.set_xlim(x[0], x[-1] if len(x) > 1 else x[0] + 1 / 1440)
    ax.set_ylim(bottom=0) if all(v >= 0 for vals in values for v in vals if not math.isnan(v)) else None
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    ax.yaxis.set_major_formatter(_axis_formatter(unit))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_ylabel(y_label or unit, color=MUTED)
    ax.set_xlabel("time (UTC)", color=MUTED)
    if len(labels) > 1:
        handles, labs = ax.get_legend_handles_labels()
        if stacked:  # stack order top-down, as the eye reads it
            handles, labs = handles[::-1], labs[::-1]
        ax.legend(handles, [_clip(lab, 34) for lab in labs], loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  fontsize=9, handlelength=1.4)
    return _png(fig)


# --- ranked bar ------------------------------------------------------------------------------------
def bar(title: str, items: Sequence[tuple[str, float]], unit: str, subtitle: str = "",
        x_label: str | None = None) -> bytes:
    """Horizontal ranked bars, largest on top, value printed at the end of each bar."""
    n = len(items)
    height = max(HEIGHT, 1.4 + 0.36 * n)
    fig = _figure(title, subtitle, (WIDTH, height))
    top = 1 - 0.95 / height
    ax = fig.add_axes((0.24, 0.55 / height, 0.66, top - 0.55 / height - 0.02))
    if not items or all((v or 0) == 0 for _, v in items):
        _no_data(ax)
        return _png(fig)
    labels = [_clip(lab, 32) for lab, _ in items]
    vals = [v or 0 for _, v in items]
    colors = [OTHER if lab == "other" else PALETTE[0] for lab, _ in items]
    y = list(range(n))[::-1]
    ax.barh(y, vals, color=colors, height=0.68)
    ax.set_yticks(y, labels)
    ax.tick_params(axis="y", length=0, labelsize=10, labelcolor=INK)
    vmax = max(vals)
    ax.set_xlim(0, vmax * 1.16)
    total = sum(vals)
    for yi, v in zip(y, vals):
        share = f"  ({v / total:.0%})" if total else ""
        ax.text(v + vmax * 0.01, yi, format_value(v, unit) + share, va="center", fontsize=9, color=INK)
    ax.xaxis.set_major_formatter(_axis_formatter(unit))
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(x_label or unit, color=MUTED)
    return _png(fig)


# --- pie ---------------------------------------------------------------------------------------------
def pie(title: str, items: Sequence[tuple[str, float]], unit: str, subtitle: str = "") -> bytes:
    """Donut chart of the top items plus 'other'; shares and values in the legend."""
    fig = _figure(title, subtitle)
    ax = fig.add_axes((0.04, 0.06, 0.5, 0.8))
    items = [(lab, v) for lab, v in items if v and v > 0]
    if len(items) > MAX_LEGEND:
        head = [it for it in items if it[0] != "other"][: MAX_LEGEND - 1]
        rest = sum(v for lab, v in items if (lab, v) not in head)
        items = head + [("other", rest)]
    if not items:
        _no_data(ax)
        return _png(fig)
    labels = [lab for lab, _ in items]
    vals = [v for _, v in items]
    total = sum(vals)
    wedges, _ = ax.pie(vals, colors=_colors(labels), startangle=90, counterclock=False,
                       wedgeprops={"width": 0.42, "edgecolor": "white", "linewidth": 1.5})
    ax.text(0, 0.06, format_value(total, unit), ha="center", va="center", fontsize=15, fontweight="bold", color=INK)
    ax.text(0, -0.14, "total", ha="center", va="center", fontsize=9, color=MUTED)
    ax.set_aspect("equal")
    legend = [f"{_clip(lab, 30)}  —  {v / total:.1%}  ({format_value(v, unit)})" for lab, v in items]
    fig.legend(wedges, legend, loc="center left", bbox_to_anchor=(0.56, 0.47), fontsize=10, handlelength=1.2,
               labelspacing=0.8)
    return _png(fig)


# --- heatmap -----------------------------------------------------------------------------------------
def heatmap(title: str, x_labels: Sequence[str], y_labels: Sequence[str],
            matrix: Sequence[Sequence[float | None]], unit: str, subtitle: str = "",
            x_label: str = "", y_label: str = "") -> bytes:
    ny = len(y_labels)
    height = max(HEIGHT, 1.6 + 0.32 * ny)
    fig = _figure(title, subtitle, (WIDTH, height))
    top = 1 - 1.0 / height
    ax = fig.add_axes((0.11, 0.7 / height, 0.76, top - 0.7 / height))
    if not ny or not x_labels or all(v in (None, 0) for row in matrix for v in row):
        _no_data(ax)
        return _png(fig)
    data = [[math.nan if v is None else v for v in row] for row in matrix]
    im = ax.imshow(data, aspect="auto", cmap="YlOrRd", interpolation="nearest")
    ax.set_xticks(range(len(x_labels)), [_clip(x, 12) for x in x_labels], fontsize=9)
    ax.set_yticks(range(ny), [_clip(y, 18) for y in y_labels], fontsize=9)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_xticks([i - 0.5 for i in range(1, len(x_labels))], minor=True)
    ax.set_yticks([i - 0.5 for i in range(1, ny)], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.2)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(x_label, color=MUTED)
    ax.set_ylabel(y_label, color=MUTED)
    cax = fig.add_axes((0.89, 0.7 / height, 0.018, top - 0.7 / height))
    cb = fig.colorbar(im, cax=cax)
    cb.ax.yaxis.set_major_formatter(_axis_formatter(unit))
    cb.outline.set_visible(False)
    cb.ax.tick_params(labelsize=8, colors=MUTED)
    return _png(fig)


# --- sankey --------------------------------------------------------------------------------------------
def sankey(title: str, links: Sequence[tuple[Sequence[str], float]], stages: Sequence[str], unit: str,
           subtitle: str = "") -> bytes:
    """Alluvial diagram: each link is (labels, one per stage), value; bands coloured by stage-2 node."""
    fig = _figure(title, subtitle, (WIDTH, 6.4))
    ax = fig.add_axes((0.02, 0.04, 0.96, 0.80))
    ax.axis("off")
    links = [(tuple(lab), v) for lab, v in links if v and v > 0]
    if not links:
        _no_data(ax)
        return _png(fig)
    ns = len(stages)
    total = sum(v for _, v in links)
    gap = 0.02
    node_w = 0.018
    xs = [0.18 + i * (0.62 / (ns - 1)) for i in range(ns)]
    # node totals per stage, biggest first, 'other' last
    nodes: list[list[tuple[str, float]]] = []
    for s in range(ns):
        tot: dict[str, float] = {}
        for lab, v in links:
            tot[lab[s]] = tot.get(lab[s], 0) + v
        nodes.append(sorted(tot.items(), key=lambda kv: (kv[0] == "other", -kv[1])))
    scale = (1 - gap * (max(len(n) for n in nodes) - 1)) / total
    pos: list[dict[str, list[float]]] = []  # node -> [top y, height]
    for s in range(ns):
        used = sum(v for _, v in nodes[s]) * scale + gap * (len(nodes[s]) - 1)
        y = 1 - (1 - used) / 2
        p = {}
        for lab, v in nodes[s]:
            h = v * scale
            p[lab] = [y, h]
            y -= h + gap
        pos.append(p)
    mid = 1 if ns > 2 else 0
    mid_colors = dict(zip([n for n, _ in nodes[mid]], _colors([n for n, _ in nodes[mid]])))
    out_off = [{k: 0.0 for k in p} for p in pos]
    in_off = [{k: 0.0 for k in p} for p in pos]
    for s in range(ns - 1):  # bands between stage s and s+1, merged over the other stages
        pair: dict[tuple[str, str, str], float] = {}
        for lab, v in links:
            key = (lab[s], lab[s + 1], lab[mid])
            pair[key] = pair.get(key, 0) + v
        order = {n: i for i, (n, _) in enumerate(nodes[s + 1])}
        order_src = {n: i for i, (n, _) in enumerate(nodes[s])}
        for (a, b, m), v in sorted(pair.items(), key=lambda kv: (order_src[kv[0][0]], order[kv[0][1]])):
            h = v * scale
            y0 = pos[s][a][0] - out_off[s][a]
            y1 = pos[s + 1][b][0] - in_off[s + 1][b]
            out_off[s][a] += h
            in_off[s + 1][b] += h
            x0, x1 = xs[s] + node_w / 2, xs[s + 1] - node_w / 2
            xm = (x0 + x1) / 2
            verts = [(x0, y0), (xm, y0), (xm, y1), (x1, y1), (x1, y1 - h), (xm, y1 - h), (xm, y0 - h),
                     (x0, y0 - h), (x0, y0)]
            codes = [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4, Path.LINETO, Path.CURVE4, Path.CURVE4,
                     Path.CURVE4, Path.CLOSEPOLY]
            ax.add_patch(PathPatch(Path(verts, codes), facecolor=mid_colors.get(m, OTHER), alpha=0.45,
                                   edgecolor="none"))
    for s in range(ns):
        for lab, v in nodes[s]:
            y, h = pos[s][lab]
            color = mid_colors.get(lab, OTHER) if s == mid else ("#7F7F7F" if lab != "other" else OTHER)
            ax.add_patch(Rectangle((xs[s] - node_w / 2, y - h), node_w, max(h, 0.002), facecolor=color,
                                   edgecolor="none"))
            text = f"{_clip(lab, 26)}  {format_value(v, unit)}"
            if s == 0:
                ax.text(xs[s] - node_w, y - h / 2, text, ha="right", va="center", fontsize=8.5, color=INK)
            elif s == ns - 1:
                ax.text(xs[s] + node_w, y - h / 2, text, ha="left", va="center", fontsize=8.5, color=INK)
            else:
                ax.text(xs[s] + node_w, y - h / 2, text, ha="left", va="center", fontsize=8.5, color=INK,
                        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
    for s, name in enumerate(stages):
        ax.text(xs[s], 1.045, name, ha="center", va="bottom", fontsize=10.5, fontweight="bold", color=MUTED)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.08)
    return _png(fig)
