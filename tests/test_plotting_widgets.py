"""Figures: the course style, 2x PNGs with their display size, the plotting helpers, and widget redraws."""

import io

import ipywidgets as widgets
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import scorelib as sl


@pytest.fixture(autouse=True)
def restore_matplotlib():
    with mpl.rc_context():
        yield
    plt.close("all")


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return im.size


# --- figure_png / use_course_style ----------------------------------------------------------------


def test_figure_png_draws_at_pixel_ratio_times_the_display_size():
    fig = plt.figure(figsize=(4.0, 3.0), dpi=72)
    fig.gca().plot([0, 1], [0, 1])
    png, size = sl.plotting.figure_png(fig)
    assert size == {"width": 288, "height": 216}  # 72 screen pixels per inch
    assert png_size(png) == (sl.plotting.PIXEL_RATIO * 288, sl.plotting.PIXEL_RATIO * 216)
    assert fig.get_dpi() == 72  # restored afterwards
    # The PNG carries the drawing: not a blank canvas.
    with Image.open(io.BytesIO(png)) as im:
        assert np.asarray(im.convert("L")).min() < 128


def test_figure_png_compress_level_changes_the_bytes_not_the_pixels():
    fig = plt.figure(figsize=(4.0, 3.0), dpi=72)
    fig.gca().plot([0, 1], [0, 1])
    (small, size_small), (fast, size_fast) = (sl.plotting.figure_png(fig, compress_level=c) for c in (9, 1))
    assert size_small == size_fast and len(fast) > len(small)
    with Image.open(io.BytesIO(small)) as a, Image.open(io.BytesIO(fast)) as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for bad in (-1, 10, 2.0, True):
        with pytest.raises(ValueError, match="compress_level must be an integer from 0 to 9"):
            sl.plotting.figure_png(fig, compress_level=bad)


def test_figure_png_with_the_course_style_size():
    # 9 x 3.4 inches at 72 dpi is 648 x 244.8 screen pixels: the PNG is within one pixel of twice that.
    sl.plotting.use_course_style()
    fig = plt.figure()
    png, size = sl.plotting.figure_png(fig)
    width, height = png_size(png)
    assert size["width"] == 648 and width == 2 * 648
    assert abs(height - sl.plotting.PIXEL_RATIO * size["height"]) < sl.plotting.PIXEL_RATIO


def test_use_course_style_sets_the_rcparams():
    mpl.rcParams["font.size"] = 17.0
    sl.plotting.use_course_style()
    for name, value in sl.plotting.COURSE_STYLE.items():
        expected = list(value) if isinstance(value, tuple) else value
        assert mpl.rcParams[name] == expected, name
    assert mpl.rcParams["font.size"] == 10


def test_use_course_style_displays_figures_through_figure_png_in_a_kernel():
    """In a real kernel the inline backend installs its own PNG formatter when it loads; ours must win."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import scorelib as sl\nsl.plotting.use_course_style()"),
            nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.figure(figsize=(2.0, 1.0))\nplt.show()"),
        ]
    )
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    (output,) = [o for o in nb.cells[1].outputs if "image/png" in o.get("data", {})]
    import base64

    assert png_size(base64.b64decode(output["data"]["image/png"])) == (2 * 144, 2 * 72)
    assert output["metadata"]["image/png"] == {"width": 144, "height": 72}


# --- the plotting helpers -------------------------------------------------------------------------


def test_grid_2d():
    X, Y, pts = sl.plotting.grid_2d((-1, 1), (0, 2), 3)
    assert X.shape == Y.shape == (3, 3) and pts.shape == (9, 2) and pts.dtype == np.float32
    np.testing.assert_array_equal(pts[:, 0], X.ravel())
    np.testing.assert_array_equal(pts[:, 1], Y.ravel())
    np.testing.assert_array_equal(np.unique(pts[:, 0]), [-1, 0, 1])
    np.testing.assert_array_equal(np.unique(pts[:, 1]), [0, 1, 2])


def test_log1p_scale_keeps_direction_and_sets_length():
    v = np.array([[3.0, 4.0], [0.0, 0.0], [-1e-3, 0.0]])
    out = sl.plotting.log1p_scale(v)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.log1p([5.0, 0.0, 1e-3]), rtol=1e-12)
    np.testing.assert_allclose(out[0], np.log1p(5.0) * np.array([0.6, 0.8]))
    np.testing.assert_array_equal(out[1], [0.0, 0.0])  # no division by zero


def test_plot_score_field_draws_the_log1p_scaled_score():
    fig, ax = plt.subplots()
    sl.plotting.plot_score_field(ax, lambda p: -2.0 * p, (-2, 2), (-1, 1), n=5, title="field")
    (quiver,) = ax.collections
    _, _, pts = sl.plotting.grid_2d((-2, 2), (-1, 1), 5)
    expected = sl.plotting.log1p_scale(-2.0 * pts)
    np.testing.assert_allclose(np.ravel(quiver.U), expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(np.ravel(quiver.V), expected[:, 1], rtol=1e-6)
    assert ax.get_xlim() == (-2, 2) and ax.get_title() == "field"


def test_plot_trajectories_draws_every_path():
    traj = np.cumsum(np.ones((4, 3, 2)), axis=0)  # 4 states of 3 paths
    fig, ax = plt.subplots()
    sl.plotting.plot_trajectories(ax, traj, label="chains")
    assert len(ax.collections) == 3  # one quiver of 3 steps per path
    assert all(len(q.U) == 3 for q in ax.collections)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), traj[:, 0, 0])
    assert [line.get_label() for line in ax.lines].count("chains") == 1


def test_plot_digits_tiles_the_images():
    images = np.linspace(0, 1, 3 * 64).reshape(3, 64)
    fig, ax = plt.subplots()
    sl.plotting.plot_digits(ax, images, n_cols=2, title="digits")
    canvas = ax.images[0].get_array()
    assert canvas.shape == (2 * 9 + 1, 2 * 9 + 1)
    np.testing.assert_allclose(canvas[1:9, 1:9], images[0].reshape(8, 8))
    np.testing.assert_allclose(canvas[1:9, 10:18], images[1].reshape(8, 8))
    np.testing.assert_allclose(canvas[10:18, 1:9], images[2].reshape(8, 8))
    assert np.all(canvas[10:18, 10:18] == 1.0)  # the empty tile stays blank
    plt.close(fig)
    fig, ax = plt.subplots()
    sl.plotting.plot_digits(ax, images, n_cols=2, row_labels=["first", "second"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["first", "second"]
    np.testing.assert_allclose(ax.get_yticks(), [4.5, 13.5])  # the middle of each row of digits
    with pytest.raises(ValueError, match="one label per row of digits"):
        sl.plotting.plot_digits(ax, images, n_cols=2, row_labels=["only one"])
    plt.close(fig)


def test_plot_loss_draws_the_moving_average_and_floor():
    losses = np.arange(10.0)
    fig, ax = plt.subplots()
    sl.plotting.plot_loss(ax, losses, label="loss", floor=-1.0, window=4)
    raw, smooth = ax.lines[0], ax.lines[1]
    np.testing.assert_array_equal(raw.get_ydata(), losses)
    np.testing.assert_array_equal(smooth.get_xdata(), np.arange(3, 10))
    np.testing.assert_allclose(smooth.get_ydata(), np.arange(3, 10) - 1.5)  # mean of 4 consecutive integers
    assert ax.lines[2].get_ydata()[0] == -1.0


def test_plot_score_pdf_1d():
    grid = np.linspace(-3, 3, 7)
    fig, axes = plt.subplots(1, 2)
    sl.plotting.plot_score_pdf_1d(axes, grid, -grid, np.exp(-(grid**2)), {"model": (-0.5 * grid[:, None], grid**2)})
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), -0.5 * grid)
    np.testing.assert_array_equal(axes[1].lines[1].get_ydata(), grid**2)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["true score", "model"]


def test_animation_gif_has_one_frame_per_update():
    fig, ax = plt.subplots(figsize=(1.0, 1.0))
    (line,) = ax.plot([0, 1], [0, 0])
    calls = []

    def update(i):
        calls.append(i)
        line.set_ydata([0, i])

    gif = sl.plotting.animation_gif(fig, update, 3, fps=10, dpi=20)
    assert gif[:6] in (b"GIF87a", b"GIF89a")
    with Image.open(io.BytesIO(gif)) as im:
        assert im.n_frames == 3
    assert set(calls) == {0, 1, 2}
    assert not plt.fignum_exists(fig.number)  # closed


# --- widgets ----------------------------------------------------------------------------------------


def test_interactive_figure_needs_controls():
    with pytest.raises(ValueError, match="at least one control"):
        sl.widgets.interactive_figure(lambda: None)
    with pytest.raises(ValueError, match="value widget"):
        sl.widgets.interactive_figure(lambda h: None, h=0.5)


def test_interactive_figure_redraws_through_figure_png(monkeypatch):
    shown, drawn = [], []
    monkeypatch.setattr(sl.widgets, "display", shown.append)

    def draw(h):
        drawn.append(h)
        fig = plt.figure(figsize=(2.0, 1.0), dpi=72)
        fig.gca().plot([0, h])

    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0)
    box = sl.widgets.interactive_figure(draw, h=slider)
    assert isinstance(box, widgets.VBox) and slider.continuous_update is False
    slider.value = 0.75  # a move redraws with the new value
    assert drawn == [0.5, 0.75]
    assert len(shown) == 2 and plt.get_fignums() == []  # each figure shown once, then closed
    image = shown[-1]
    assert (image.width, image.height) == (144, 72)
    assert png_size(image.data) == (288, 144)


def test_interactive_figure_reuses_its_layout_only_while_the_text_around_the_axes_is_the_same(monkeypatch):
    mpl.rcParams["figure.constrained_layout.use"] = True
    monkeypatch.setattr(sl.widgets, "display", lambda image: None)
    drawn = []  # (layout engine used, active positions of the axes) for each widget redraw

    def record(fig, **kwargs):
        png = sl.plotting.figure_png(fig, **kwargs)
        engine = type(fig.get_layout_engine()).__name__
        drawn.append((engine, [ax.get_position().bounds for ax in fig.axes]))
        return png

    monkeypatch.setattr(sl.widgets, "figure_png", record)

    def draw(h):
        fig, axes = plt.subplots(1, 3, figsize=(9, 3))
        axes[0].imshow(np.random.default_rng(0).random((8, 8)) * h, extent=(-2, 2, -2, 2), aspect="equal")
        axes[0].set_title(f"h = {h}")
        axes[1].loglog([0.1, 1.0], [1e-3 * h, 10.0])
        axes[1].set(xlim=(0.05, 2.0), ylim=(1e-4, 100.0) if h < 2 else (1e-12, 1e8), ylabel="Fisher divergence")
        axes[2].plot([0, 1], [0, h])
        axes[2].set(ylim=(0, 3), xlabel="x" if h < 1 else "a label\non two lines")

    def fresh_layout(h):
        draw(h)
        fig = plt.gcf()
        fig.set_dpi(fig.get_dpi() * sl.plotting.PIXEL_RATIO)
        fig.canvas.draw()
        bounds = [ax.get_position().bounds for ax in fig.axes]
        plt.close(fig)
        return bounds

    slider = widgets.SelectionSlider(options=[0.5, 0.75, 1.5, 2.5], value=0.5)
    sl.widgets.interactive_figure(draw, h=slider)
    for h in (0.75, 1.5, 2.5, 0.5):
        slider.value = h
    engines = [engine for engine, _ in drawn]
    # laid out: the first figure, a new x label, new y-axis ticks, the first figure's text again (its layout kept)
    assert engines == ["ConstrainedLayoutEngine", "PlaceHolderLayoutEngine", "ConstrainedLayoutEngine",
                       "ConstrainedLayoutEngine", "PlaceHolderLayoutEngine"]  # fmt: skip
    for h, (_, bounds) in zip((0.5, 0.75, 1.5, 2.5, 0.5), drawn, strict=True):
        np.testing.assert_allclose(bounds, fresh_layout(h), atol=1e-9, err_msg=f"h = {h}")
