"""Build notebooks from their jupytext sources and execute them top to bottom in a fresh kernel.

    python tools/execute_notebooks.py                 # every notebooks/NN_*.py
    python tools/execute_notebooks.py notebooks/01_ism_1d_mixture.py
    python tools/execute_notebooks.py --timings notebooks/03_swiss_roll_sliced.py   # also cells over 0.5 s

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
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


SHOW_TIMINGS = "--timings" in sys.argv


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _as_displayed(text: str) -> str:
    """A stream as a terminal or JupyterLab shows it: each line keeps only what follows its last carriage return.

    A progress bar redraws itself with ``\\r`` dozens of times; storing every redraw (with its timings) bloats the
    notebook and its diffs, while a reader only ever sees the final bar.
    """
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def execute(src: Path) -> float:
    nb = jupytext.read(src)
    # The kernelspec exactly as the installed kernel describes itself: JupyterLab rewrites any other display name
    # when it opens the notebook, which marks a freshly opened notebook as modified.
    spec = KernelSpecManager().get_kernel_spec("python3")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    nb.metadata.pop("jupytext", None)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    start = time.perf_counter()
    # coalesce_streams: a cell's stdout is stored as one stream (a progress bar sends one message per redraw).
    NotebookClient(nb, timeout=600, kernel_name="python3", coalesce_streams=True,
                   resources={"metadata": {"path": str(src.parent)}}).execute()
    elapsed = time.perf_counter() - start
    for i, cell in enumerate(nb.cells):
        timing = cell.metadata.pop("execution", None)
        if SHOW_TIMINGS and timing and "shell.execute_reply" in timing:
            seconds = _seconds(timing["shell.execute_reply"]) - _seconds(timing["iopub.execute_input"])
            if seconds > 0.5:
                print(f"  cell {i:3d}: {seconds:5.1f} s  {cell.source.splitlines()[0][:70] if cell.source else ''}")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and "\r" in output.get("text", ""):
                output["text"] = _as_displayed(output["text"])
        cell.id = f"cell-{i:03d}"  # stable ids keep diffs of regenerated notebooks small
    nbformat.write(nb, src.with_suffix(".ipynb"))
    return elapsed


def main(args: list[str]) -> None:
    args = [a for a in args if a != "--timings"]
    sources = [Path(a).resolve() for a in args] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for src in sources:
        elapsed = execute(src)
        size = src.with_suffix(".ipynb").stat().st_size / 1e6
        print(f"{src.name}: executed in {elapsed:.1f} s, {size:.2f} MB stored")


if __name__ == "__main__":
    main(sys.argv[1:])
