"""Widget builders: sliders that redraw a figure through a pure plotting function.

The pattern of every notebook: a plotting function ``draw(**values)`` is called
once in a normal cell (so readers of the stored notebook see the default
figure) and again by the widget on every slider move. Expensive work belongs
in a cache or a precomputation, so a move answers in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import Image, display
from matplotlib.backends.backend_agg import FigureCanvasAgg

from scorelib.plotting import figure_png

__all__ = ["interactive_figure", "InteractiveFigure"]


def _layout_key(fig):
    """What constrained layout's result depends on, for the figures one widget draws; None: lay it out every time.

    The margins come from the text around each axes: tick labels (set by the axis limits and scales), axis labels
    and the number of title lines. A figure with the same key gets the same axes positions, so a widget lays out
    its figure once and reuses the positions while none of these change (the layout is about half of a redraw).
    """
    engine = fig.get_layout_engine()
    if engine is None or type(engine).__name__ != "ConstrainedLayoutEngine":
        return None
    if fig.legends or any(getattr(fig, name, None) is not None for name in ("_suptitle", "_supxlabel", "_supylabel")):
        return None
    axes = []
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None:
            return None
        axes.append((
            spec.get_geometry(), type(ax).__name__, ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale(),
            ax.xaxis.get_visible(), ax.yaxis.get_visible(), ax.axison,
            tuple(ax.get_xticks()), tuple(ax.get_yticks()), ax.get_xlabel(), ax.get_ylabel(),
            tuple(ax.get_title(loc).count("\n") + bool(ax.get_title(loc)) for loc in ("left", "center", "right")),
            tuple(ax.xaxis.get_major_formatter().format_ticks(ax.get_xticks())),
            tuple(ax.yaxis.get_major_formatter().format_ticks(ax.get_yticks())),
        ))  # fmt: skip
    return (tuple(fig.get_size_inches()), fig.get_dpi(), tuple(axes))


class InteractiveFigure(widgets.VBox):
    """The sliders and the figure of :func:`interactive_figure`.

    Its plain-text form is what a notebook shows for the widget until a kernel
    runs the cell (a freshly opened notebook, GitHub, nbviewer): a sentence for
    the reader instead of ipywidgets' ``VBox(children=(HBox(...`` repr.
    """

    def __repr__(self) -> str:
        names = ", ".join(getattr(c, "description", "") or "slider" for c in self.children[0].children)
        text = f"[Interactive figure ({names}): run the notebook's cells to move the sliders.]"
        # ipywidgets cuts the plain-text form at 110 characters
        return text if len(text) <= 110 else "[Interactive figure: run the notebook's cells to move the sliders.]"


def interactive_figure(draw: Callable[..., None], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Sliders above a figure that ``draw(**values)`` redraws on every change.

    Args:
      draw: makes one matplotlib figure from the control values (it may also print).
      **controls: ipywidgets controls, by the keyword ``draw`` expects.

    Returns:
      An :class:`InteractiveFigure` (a ``VBox``) with the controls and the output area;
      display it as a cell's last value.
    """
    if not controls:
        raise ValueError("interactive_figure needs at least one control, e.g. h=FloatSlider(...)")
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise ValueError(f"control {name!r} must be an ipywidgets value widget; got {type(control).__name__}")
        control.continuous_update = False

    layouts = {}  # layout key -> the axes positions constrained layout gave

    def show(**values):
        # JupyterLab may deliver a widget message on a second kernel thread (ipykernel 7's subshells), and
        # after each message IPython asks pyplot to redraw every figure it holds. If that redraw ran while
        # this thread renders the same figure to PNG, two threads would draw one canvas and panels would come
        # out blank. So the figures are taken out of pyplot before rendering: each gets a canvas of its own,
        # and only this thread ever draws it.
        plt.close("all")  # nothing left over from earlier cells may be drawn into or shown here
        with plt.ioff():
            draw(**values)
            figures = [plt.figure(number) for number in plt.get_fignums()]
            plt.close("all")
        for fig in figures:
            FigureCanvasAgg(fig)
            key = _layout_key(fig)
            if key in layouts:
                fig.set_layout_engine("none")
                for ax, position in zip(fig.axes, layouts[key], strict=True):
                    ax.set_position(position, which="both")
            png, size = figure_png(fig, compress_level=1)  # sent once, never stored: speed over size
            if key is not None and key not in layouts:
                layouts[key] = [ax.get_position(original=True) for ax in fig.axes]
            display(Image(data=png, format="png", **size))

    out = widgets.interactive_output(show, controls)
    return InteractiveFigure([widgets.HBox(list(controls.values())), out])
