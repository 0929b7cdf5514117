"""Figure helpers shared by the notebooks (matplotlib), and the course's one figure style.

Every notebook calls :func:`use_course_style` once in its first cell. It sets
the sizes and fonts, and makes figures display as PNGs drawn at twice their
on-screen resolution (sharp on high-resolution screens), through the same
function the widgets use, so a widget's redraw looks exactly like the static
figure.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation

__all__ = [
    "COURSE_STYLE",
    "PIXEL_RATIO",
    "use_course_style",
    "figure_png",
    "grid_2d",
    "log1p_scale",
    "plot_score_field",
    "plot_trajectories",
    "plot_digits",
    "plot_loss",
    "plot_score_pdf_1d",
    "animation_gif",
]


# One inch is 72 CSS pixels on screen, so a 9-inch figure is 648 px wide (it fits JupyterLab's
# output area) and a 10-point font is 10 px high. Constrained layout keeps labels and titles
# inside the figure, so nothing is clipped when a widget draws it without a tight bounding box.
COURSE_STYLE = {
    "figure.dpi": 72,
    "figure.figsize": (9.0, 3.4),
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "image.interpolation": "nearest",
    # Titles sit a fixed pad above the axes. With "auto" (None) matplotlib measures every tick label on every draw
    # to lift the title over anything at the top; no course figure puts ticks there, and the measuring was a tenth
    # of a widget redraw (notebook 04's bandwidth slider: 0.03 of 0.33 s).
    "axes.titley": 1.0,
}
PIXEL_RATIO = 2  # PNG pixels per screen pixel: sharp on high-resolution screens


def figure_png(fig, *, compress_level: int = 6) -> tuple[bytes, dict[str, int]]:
    """The figure as PNG bytes drawn at ``PIXEL_RATIO`` times its screen size, and its display size.

    Returns ``(png, {"width": w, "height": h})`` in screen pixels, the form
    IPython's display formatters take. ``compress_level`` is zlib's, 0-9: the
    default 6 keeps stored notebooks small; widget redraws use 1, about 10%
    larger and 0.025 s faster for notebook 04's three panels. The pixels come
    from one ordinary ``canvas.draw()``: inside a widget callback (a comm message, not a cell),
    ``savefig`` and the inline backend's formatter drew some figures blank
    (seen with notebook 04's bandwidth slider, found by tests/test_browser.py).
    """
    from PIL import Image as PILImage

    if isinstance(compress_level, bool) or not isinstance(compress_level, int) or not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be an integer from 0 to 9 (zlib's levels); got {compress_level!r}")
    dpi = fig.get_dpi()
    fig.set_dpi(dpi * PIXEL_RATIO)
    try:
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    finally:
        fig.set_dpi(dpi)
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format="png", compress_level=compress_level)
    height, width = rgb.shape[:2]
    return buffer.getvalue(), {"width": width // PIXEL_RATIO, "height": height // PIXEL_RATIO}


def use_course_style() -> None:
    """Apply the course's figure style; in IPython, also display figures through :func:`figure_png`."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: the rcParams are all there is to set
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is not None:
        # Load the backend first: the inline backend sets its own rcParams and PNG formatter when it is first
        # loaded (by the first figure, otherwise), which would replace the ones set here.
        plt.switch_backend(mpl.get_backend())
    mpl.rcParams.update(COURSE_STYLE)
    if shell is not None:
        from matplotlib.figure import Figure

        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


def grid_2d(xlim: tuple[float, float], ylim: tuple[float, float], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A regular ``n x n`` grid: ``(X, Y, points)`` with ``points`` of shape ``(n*n, 2)``."""
    X, Y = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
    return X, Y, np.stack([X.ravel(), Y.ravel()], axis=1).astype(np.float32)


def log1p_scale(v) -> np.ndarray:
    """Rescale vectors to length ``log(1 + |v|)``, keeping their direction.

    Scores grow without bound away from the data; this keeps a quiver plot
    readable both near and far from it.
    """
    v = np.asarray(v)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, 1e-12) * np.log1p(norm)


def plot_score_field(
    ax,
    score_fn: Callable,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    *,
    n: int = 21,
    color: str = "C0",
    title: str | None = None,
    scale: float | None = None,
):
    """Quiver plot of a 2D score field with log1p-scaled arrow lengths.

    Args:
      ax: matplotlib axes.
      score_fn: ``(m, 2) -> (m, 2)``.
      xlim, ylim: plot window.
      n: arrows per side.
      color: arrow colour.
      title: axes title.
      scale: passed to ``quiver`` (larger means shorter arrows).
    """
    X, Y, pts = grid_2d(xlim, ylim, n)
    v = log1p_scale(np.asarray(score_fn(pts)))
    ax.quiver(X, Y, v[:, 0].reshape(X.shape), v[:, 1].reshape(X.shape), color=color, scale=scale, width=0.004)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    if title:
        ax.set_title(title)
    return ax


def plot_trajectories(ax, trajectory, *, color: str = "C3", label: str | None = None):
    """Draw 2D paths as arrows from step to step.

    Args:
      ax: matplotlib axes.
      trajectory: ``(steps + 1, n_paths, 2)`` states.
    """
    traj = np.asarray(trajectory)
    for j in range(traj.shape[1]):
        path = traj[:, j]
        ax.plot(path[:, 0], path[:, 1], ".", color=color, ms=3, label=label if j == 0 else None)
        d = np.diff(path, axis=0)
        ax.quiver(
            path[:-1, 0],
            path[:-1, 1],
            d[:, 0],
            d[:, 1],
            angles="xy",
            scale_units="xy",
            scale=1,
            color=color,
            width=0.003,
            alpha=0.7,
        )
        ax.plot(*path[0], "o", color="k", ms=5)
    return ax


def plot_digits(ax, images, *, n_cols: int = 10, title: str | None = None, row_labels=None):
    """Show ``(n, 64)`` digits in [0, 1] as one tiled grayscale image.

    Args:
      ax: the matplotlib axes.
      images: ``(n, 64)`` digits, filled in row by row.
      n_cols: digits per row.
      title: the axes title.
      row_labels: one label per row of digits, written at the left of each row.
    """
    imgs = np.clip(np.asarray(images), 0, 1).reshape(-1, 8, 8)
    n_rows = int(np.ceil(len(imgs) / n_cols))
    canvas = np.ones((n_rows * 9 + 1, n_cols * 9 + 1))
    for i, img in enumerate(imgs):
        r, c = divmod(i, n_cols)
        canvas[1 + 9 * r : 9 * r + 9, 1 + 9 * c : 9 * c + 9] = img
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if row_labels is not None:
        if len(row_labels) != n_rows:
            raise ValueError(f"row_labels needs one label per row of digits ({n_rows}); got {len(row_labels)}")
        ax.set_axis_on()
        ax.set(xticks=[], yticks=4.5 + 9 * np.arange(n_rows), yticklabels=list(row_labels))
        ax.tick_params(length=0)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def plot_loss(ax, losses, *, label: str | None = None, floor: float | None = None, window: int = 50):
    """A loss curve with a moving average; ``floor`` draws a dashed reference line."""
    losses = np.asarray(losses)
    ax.plot(losses, alpha=0.3, lw=0.8, color="C0" if label is None else None)
    if len(losses) >= window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(losses)), smooth, label=label)
    if floor is not None:
        ax.axhline(floor, ls="--", color="k", lw=1, label="floor $-\\frac{1}{2}E|s^*|^2$")
    ax.set(xlabel="step", ylabel="loss")
    return ax


def plot_score_pdf_1d(axes, grid, true_score, true_pdf, learned: dict[str, tuple], *, data=None):
    """Two panels for 1D models: scores on the left, densities on the right.

    Args:
      axes: a pair of matplotlib axes.
      grid: ``(m,)`` points.
      true_score, true_pdf: ``(m,)`` reference curves.
      learned: ``{label: (score (m,), pdf (m,))}`` curves to compare.
      data: optional ``(n,)`` samples, drawn as a rug under the density.
    """
    ax_s, ax_p = axes
    ax_s.plot(grid, true_score, "k", lw=2.5, alpha=0.35, label="true score")
    ax_p.plot(grid, true_pdf, "k", lw=2.5, alpha=0.35, label="true pdf")
    for label, (score, pdf) in learned.items():
        ax_s.plot(grid, np.ravel(score), lw=1.5, label=label)
        ax_p.plot(grid, pdf, lw=1.5, label=label)
    if data is not None:
        ax_p.plot(np.ravel(data), np.full(np.size(data), -0.01), "|", color="k", alpha=0.2, ms=6)
    ax_s.set(xlabel="$x$", ylabel="score $s(x)$", ylim=(-12, 12))
    ax_p.set(xlabel="$x$", ylabel="density")
    ax_s.legend(loc="upper right")
    ax_p.legend(loc="upper left")
    return axes


def animation_gif(fig, update: Callable[[int], None], n_frames: int, *, fps: int = 5, dpi: int = 72) -> bytes:
    """Render ``update(i)`` for ``i < n_frames`` into GIF bytes (closes ``fig``).

    Display the result with ``IPython.display.Image(data, format="gif")``.
    """
    anim = animation.FuncAnimation(fig, update, frames=n_frames)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "animation.gif"
        anim.save(path, writer=animation.PillowWriter(fps=fps), dpi=dpi)
        plt.close(fig)
        return path.read_bytes()
