"""Build notebooks from their jupytext sources and execute them top to bottom in a fresh kernel.

    python tools/execute_notebooks.py                 # every notebooks/NN_*.py
    python tools/execute_notebooks.py notebooks/01_ism_1d_mixture.py

Each ``notebooks/NN_topic.py`` (percent format) becomes ``notebooks/NN_topic.ipynb``
with its outputs stored, as nbval and readers expect. The wall time of each run
is printed.
"""

import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(src: Path) -> float:
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}}).execute()
    elapsed = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        cell.id = f"cell-{i:03d}"  # stable ids keep diffs of regenerated notebooks small
    nbformat.write(nb, src.with_suffix(".ipynb"))
    return elapsed


def main(args: list[str]) -> None:
    sources = [Path(a).resolve() for a in args] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for src in sources:
        elapsed = execute(src)
        size = src.with_suffix(".ipynb").stat().st_size / 1e6
        print(f"{src.name}: executed in {elapsed:.1f} s, {size:.2f} MB stored")


if __name__ == "__main__":
    main(sys.argv[1:])
