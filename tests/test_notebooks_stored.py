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


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


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
        assert "fit(" not in "".join(c["source"]), (
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
