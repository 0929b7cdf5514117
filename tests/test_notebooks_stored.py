"""Guards that make the nbval regression test non-vacuous.

nbval (run on ``notebooks/`` by the same ``pytest``) compares the outputs of the
cells marked ``# NBVAL_CHECK_OUTPUT`` with the stored ones. That comparison is
only meaningful if the stored notebook really is a complete, clean run: these
tests fail if a notebook is stored unexecuted, out of order, with an error or a
warning, without checked cells, or with a checked cell that has no output.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK = "NBVAL_CHECK_OUTPUT"

# scorelib's training call, `sl.train.fit(...)` (or `train.fit(...)`, or a bare `fit(...)` imported from
# scorelib.train): not a method call such as scikit-learn's `clf.fit(...)`, nor `np.polyfit(...)`.
TRAINING_CALL = re.compile(r"(?<![\w.])(?:(?:sl|scorelib)\.)?(?:train\.)?fit\(")


def trains_a_model(source: str) -> bool:
    """True when ``source`` calls scorelib's training loop."""
    return TRAINING_CALL.search(source) is not None


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


@pytest.mark.parametrize(
    "source",
    [
        "result = sl.train.fit(loss, params, key=key, data=x, steps=10, batch_size=8, optimizer=opt)",
        "res = scorelib.train.fit(loss, p, **kw)",
        "out = train.fit(loss, p, **kw)",
        "from scorelib.train import fit\nresult = fit(loss, p, **kw)",
        "print(1)\nparams = sl.train.fit(loss, p, **kw).params",
    ],
)
def test_training_call_matcher_finds_scorelib_fit(source):
    assert trains_a_model(source)


@pytest.mark.parametrize(
    "source",
    [
        "clf = LogisticRegression().fit(X, y)",
        "ev.classifier.fit(X_train, y_train)",
        "slope = np.polyfit(x, y, 1)",
        "print(f'fitted {result.losses[-1]:.3f}')",
        "# NBVAL_CHECK_OUTPUT\nprint(fitness(3), refit)",
        'row = level_loss["Gaussian fit (g = 0)"]',
    ],
)
def test_training_call_matcher_ignores_other_fits(source):
    assert not trains_a_model(source)


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed(path):
    nb = json.loads(path.read_text())
    cells = code_cells(nb)
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} is not stored as one clean top-to-bottom run (execution counts {counts}); "
        "regenerate it with `python tools/execute_notebooks.py`"
    )
    checked = [c for c in cells if CHECK in "".join(c["source"])]
    assert len(checked) >= 2, f"{path.name} has fewer than two cells marked # {CHECK}"
    for c in checked:
        assert not trains_a_model("".join(c["source"])), (
            f"a checked cell of {path.name} trains a model: its progress bar depends on timing, so train in an "
            "unchecked cell and print the numbers in the checked one"
        )
        text = "".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("output_type") == "stream")
        assert re.search(r"\d", text), (
            f"a checked cell of {path.name} stores no printed numbers:\n{''.join(c['source'])}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_clean(path):
    nb = json.loads(path.read_text())
    for c in code_cells(nb):
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", f"{path.name} stores an error"
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = "".join(o.get("text", ""))
                assert not re.search(r"Warning|Traceback", text), f"{path.name} stores a warning: {text[:300]}"
    for c in code_cells(nb):
        for o in c.get("outputs", []):
            if "image/png" in o.get("data", {}):
                assert "width" in o.get("metadata", {}).get("image/png", {}), (
                    f"{path.name} stores a figure that bypassed the course style (call sl.plotting.use_course_style() "
                    "in the first cell): its PNG carries no display size"
                )
    assert path.stat().st_size < 2_000_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB (keep under 2 MB)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_its_paired_source_in_sync(path):
    """Each notebook is authored as a jupytext percent-format twin; the two must hold the same code."""
    twin = path.with_suffix(".py")
    assert twin.exists(), f"{twin.name} (the jupytext source of {path.name}) is missing"
    import jupytext

    src = jupytext.read(twin)
    stored = json.loads(path.read_text())

    def sources(cells):
        return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]).strip() for c in cells]

    assert sources(src.cells) == sources(stored["cells"]), (
        f"{path.name} and {twin.name} differ; regenerate with `python tools/execute_notebooks.py {twin}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_names_the_installed_kernel_as_it_describes_itself(path):
    """JupyterLab rewrites a kernelspec whose display name differs from the installed kernel's when a notebook is
    opened by its URL, which marks a freshly opened notebook as modified (the browser test opens them from one page,
    where this does not happen, so it is checked here)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    stored = json.loads(path.read_text())["metadata"].get("kernelspec")
    expected = {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    assert stored == expected, (
        f"{path.name} stores the kernelspec {stored}; the installed kernel describes itself as {expected}: "
        "regenerate it with `python tools/execute_notebooks.py`"
    )
