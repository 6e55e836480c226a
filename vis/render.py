"""Figure creation and byte-reproducible saving (PNG + PDF), headless: matplotlib's object API on an explicit Agg
canvas (no display, no pyplot state) under a fixed style, so that the output does not depend on a matplotlibrc."""
import io
import math
import textwrap
from contextlib import contextmanager
from pathlib import Path

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from common.io import atomic_write_bytes

DPI = 150
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True}
# Distinct shapes keep layers apart where their lines or points coincide.
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h", "<", ">")
BASELINE_COLOR = "0.2"
NOT_LEARNED_COLOR = "0.6"
# Timestamps and version strings are what would make two renders of the same data differ.
PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}
FOOTNOTE_SIZE = 7.5
# average width of a footnote character in points (DejaVu Sans runs at about 0.55 of its size; a margin for wide ones)
FOOTNOTE_CHAR_WIDTH = 0.6 * FOOTNOTE_SIZE


def layer_style(layer, layers):
    """(colour, marker) of ``layer``, by its position among the model's ``layers``."""
    index = layers.index(layer)
    return f"C{index % 10}", MARKERS[index % len(MARKERS)]


@contextmanager
def figure_style():
    with matplotlib.style.context(["default", STYLE]):
        yield


def new_figure(width, height):
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def panel_grid(count, ncols, panel_size, margins):
    """A figure with ``count`` panels in rows of ``ncols`` (the unused ones hidden): ``(fig, axes)``."""
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    fig = new_figure(panel_size[0] * ncols + margins[0], panel_size[1] * nrows + margins[1])
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def add_footnote(fig, lines):
    """Small print under the axes, each line wrapped to the figure's width so that none is cut at the right edge."""
    if lines:
        width = max(40, int(fig.get_figwidth() * 72 * 0.97 / FOOTNOTE_CHAR_WIDTH))
        wrapped = [part for line in lines for part in textwrap.wrap(line, width) or [""]]
        fig.supxlabel("\n".join(wrapped), fontsize=FOOTNOTE_SIZE, color="0.3", ha="left", x=0.01)


def save_figure(fig, stem, location="results_dir"):
    """Write ``stem.png`` and ``stem.pdf``; returns both paths (``location``: the setting that chose the folder)."""
    stem = Path(stem)
    written = []
    for fmt, metadata in (("png", PNG_METADATA), ("pdf", PDF_METADATA)):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write_bytes(path, buffer.getvalue(), location)
        written.append(path)
    return written


def eps_axis(dataset, norm):
    """``(factor, unit)``: eps of ``norm`` drawn as ``factor * eps``; L-inf in the data set's own units (8/255 as 8
    on CIFAR-10, 0.1 as 0.1 on Fashion-MNIST), L2 on the [0, 1] pixel scale."""
    if norm == "linf":
        return dataset.scale_eps(1.0), dataset.eps_unit
    return 1.0, "pixel scale [0, 1]"
