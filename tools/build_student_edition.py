"""Build the student edition of the course from the notebooks (the teacher's edition).

    python tools/build_student_edition.py                 # writes student/NN_topic.ipynb for every notebook
    python tools/build_student_edition.py --out DIR       # somewhere else
    python tools/build_student_edition.py --execute       # and run each student notebook top to bottom

The teacher's edition marks what students must not see with nbgrader's conventions [nbgrader], so a teacher who knows
nbgrader can also feed the notebooks to ``nbgrader generate_assignment``:

- code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (the body of a coding exercise's function) becomes
  a stub that raises ``NotImplementedError`` (nbgrader's ``ClearSolutions``); the comments above the markers, such as
  the hint, stay;
- Markdown between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` (the collapsed worked solutions; the
  HTML comments are invisible in the teacher's edition) becomes "Your answer here";
- cells tagged ``solution`` (the cells that run a prose exercise's solution) are removed (nbconvert's
  ``TagRemovePreprocessor``).

Every other cell, with its stored outputs, is kept as it is; the outputs of the cells that changed and of the
``sl.exercises.check_*`` cells (which would say "correct") are cleared. ``--execute`` runs each student notebook in
a fresh kernel and requires that it runs to the end with every check reporting its exercise as not attempted.

[nbgrader]: https://nbgrader.readthedocs.io/en/stable/user_guide/creating_and_grading_assignments.html
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import TagRemovePreprocessor
from nbgrader.preprocessors import ClearSolutions

ROOT = Path(__file__).resolve().parents[1]
CODE_STUB = 'raise NotImplementedError("Exercise: replace this line with your code, then run the check below.")'
TEXT_STUB = "*Your answer here. (The teacher's edition has a worked solution.)*"
SOLUTION_REGION = re.compile(r"BEGIN SOLUTION(.*?)END SOLUTION", re.S)
SUMMARY = re.compile(r"<summary>\s*(.*?)\s*</summary>", re.S)
CHECK_CALL = re.compile(r"\bsl\.exercises\.check_\w+\(")
NOT_ATTEMPTED = "not attempted yet"
BANNER = (
    "**Student edition.** The coding exercises at the end are yours to write: each function raises "
    "`NotImplementedError` until you do, and the cell after it checks your answer "
    "(`sl.exercises.check_...`). Everything else is the course notebook as it is."
)


def student_edition(teacher: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student edition of one executed teacher's notebook (a new notebook; the input is not modified)."""
    nb = nbformat.from_dict(teacher)  # a deep copy
    before = {cell.id: cell.source for cell in nb.cells}
    remove = TagRemovePreprocessor(remove_cell_tags={"solution"}, enabled=True)
    clear = ClearSolutions(code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB, enforce_metadata=False)
    nb, _ = remove.preprocess(nb, {})
    # Each worked solution's own title ("Solution 2 and 3") names its stub, so a student sees which answer goes where.
    titles = {cell.id: [_stub_title(region) for region in SOLUTION_REGION.findall(cell.source)]
              for cell in nb.cells if cell.cell_type == "markdown"}
    nb, _ = clear.preprocess(nb, {})
    for cell in nb.cells:
        for title in titles.get(cell.id, []):
            cell.source = cell.source.replace(TEXT_STUB, f"**{title}:** {TEXT_STUB}", 1)
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.source != before[cell.id] or CHECK_CALL.search(cell.source)):
            cell.outputs = []
            cell.execution_count = None
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(BANNER, id="student-edition"))
    return nb


def _stub_title(region: str) -> str:
    match = SUMMARY.search(region)
    title = match.group(1) if match else "Your answer"
    return re.sub(r"^Solutions?", lambda m: "Exercise" + ("s" if m.group(0).endswith("s") else ""), title)


def check_edition(nb: nbformat.NotebookNode, name: str) -> None:
    """Raise if a solution survived or a check went missing."""
    text = "\n".join(cell.source for cell in nb.cells)
    for leak in ("BEGIN SOLUTION", "END SOLUTION", "<summary>Solution"):
        if leak in text:
            raise RuntimeError(f"{name}: the student edition still contains {leak!r}")
    if len(CHECK_CALL.findall(text)) < 2:
        raise RuntimeError(f"{name}: fewer than two exercise checks in the student edition")


def execute(nb: nbformat.NotebookNode, path: Path) -> float:
    """Run a student notebook top to bottom; every check must report its exercise as not attempted."""
    from nbclient import NotebookClient

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source):
            out = "".join(o.get("text", "") for o in cell.outputs)
            if NOT_ATTEMPTED not in out:
                raise RuntimeError(f"{path.name}: a check did not report its exercise as not attempted:\n"
                                   f"{cell.source}\n--- output ---\n{out}")
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="teacher's notebooks (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="where to write (default: student/)")
    parser.add_argument("--execute", action="store_true", help="run each student notebook top to bottom")
    args = parser.parse_args(argv)
    sources = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    for src in sources:
        nb = student_edition(nbformat.read(src.with_suffix(".ipynb"), as_version=4))
        check_edition(nb, src.name)
        path = args.out / src.with_suffix(".ipynb").name
        message = f"{path}: {len(CHECK_CALL.findall(chr(10).join(c.source for c in nb.cells)))} exercise checks"
        if args.execute:
            message += f", ran top to bottom in {execute(nb, path):.0f} s, every check reports 'not attempted'"
        nbformat.write(nb, path)
        print(message, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
