"""The student edition: built from the stored notebooks, no solution left, and its exercises run without them.

The full proof that every student notebook runs top to bottom is `python tools/build_student_edition.py --execute`
(it retrains every model, about five minutes; `.ci/run` runs it). This test proves the same more cheaply, in two
parts: the student edition's cells before the Exercises section are the teacher's cells unchanged (which nbval runs
top to bottom), and the exercise section runs in a fresh namespace that holds only the notebook's first code cell
(its imports), so it cannot depend on anything the rest of the notebook computes (the run-time cell after the
References is the teacher's too). Every check must then report its
exercise as not attempted.
"""

import contextlib
import importlib.util
import io
from pathlib import Path

import matplotlib
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

spec = importlib.util.spec_from_file_location("build_student_edition", ROOT / "tools" / "build_student_edition.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def _heading_index(nb, heading: str) -> int:
    (index,) = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and heading in c.source.splitlines()]
    return index


def _exercises_index(nb) -> int:
    return _heading_index(nb, "## Exercises")


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def editions(request):
    teacher = nbformat.read(request.param, as_version=4)
    return teacher, build.student_edition(teacher)


def test_no_solution_is_left(editions):
    teacher, student = editions
    build.check_edition(student, "student")
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
    teacher_text = "\n".join(c.source for c in teacher.cells)
    assert "### BEGIN SOLUTION" in teacher_text and "<!-- BEGIN SOLUTION -->" in teacher_text
    stubs = [c for c in student.cells if build.CODE_STUB in c.source]
    assert len(stubs) >= 2 and all(not c.outputs for c in stubs)


def test_cells_outside_the_exercises_are_the_teachers(editions):
    teacher, student = editions
    t, s = _exercises_index(teacher), _exercises_index(student)
    assert student.cells[0].id == "student-edition" and s == t + 1
    t_end, s_end = _heading_index(teacher, "## References"), _heading_index(student, "## References")
    for mine, theirs in zip(student.cells[1:s] + student.cells[s_end:], teacher.cells[:t] + teacher.cells[t_end:],
                            strict=True):
        assert (mine.source, mine.get("outputs")) == (theirs.source, theirs.get("outputs"))


def test_exercise_section_runs_on_the_imports_alone(editions):
    _, student = editions
    code = [c for c in student.cells if c.cell_type == "code"]
    exercises = student.cells[_exercises_index(student):_heading_index(student, "## References")]
    section = [c for c in exercises if c.cell_type == "code"]
    namespace = {"__name__": "__student__"}
    out = io.StringIO()
    with matplotlib.rc_context(), contextlib.redirect_stdout(out):
        for cell in [code[0], *section]:
            exec(compile(cell.source, f"<student cell {cell.id}>", "exec"), namespace)  # noqa: S102
    checks = [c for c in section if build.CHECK_CALL.search(c.source)]
    assert len(checks) >= 2
    assert out.getvalue().count(build.NOT_ATTEMPTED) == len(checks), out.getvalue()
