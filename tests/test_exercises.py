"""Every exercise check passes its reference, reports a stub as not attempted, and explains each known mistake."""

import re
from pathlib import Path

import pytest

import scorelib as sl
from scorelib.exercises import CHECKS, ExerciseError

NOTEBOOKS = sorted(Path(__file__).resolve().parents[1].joinpath("notebooks").glob("0*.py"))
IDS = [c.name for c in CHECKS]


def test_every_notebook_has_two_coding_exercises():
    per_notebook = {nb.name[:2]: [c.name for c in CHECKS if c.notebook == nb.name[:2]] for nb in NOTEBOOKS}
    assert all(len(names) >= 2 for names in per_notebook.values()), per_notebook
    assert len(set(IDS)) == len(IDS), "two checks share a name"


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_reference_passes(check, capsys):
    check(check.reference)
    assert f"{check.name}: correct." in capsys.readouterr().out


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_stub_is_reported_not_attempted(check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("the student edition's stub")

    check(stub)
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "check, mistake",
    [(c, m) for c in CHECKS for m in c.mistakes],
    ids=[f"{c.name}-{m.replace(' ', '_')}" for c in CHECKS for m in c.mistakes],
)
def test_mistake_fails_with_its_message(check, mistake):
    slip = check.mistakes[mistake]
    with pytest.raises(ExerciseError, match=re.escape(slip.expected_words)):
        check(slip.fn)


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_not_a_function_and_a_crash_are_explained(check):
    with pytest.raises(ExerciseError, match="takes your function itself"):
        check(3.0)

    def crashes(*args, **kwargs):
        return {}["key"]

    with pytest.raises(ExerciseError, match="raised KeyError"):
        check(crashes)


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_each_check_is_used_in_its_notebook(check):
    (source,) = [nb for nb in NOTEBOOKS if nb.name.startswith(check.notebook)]
    assert f"sl.exercises.{check.name}(" in source.read_text()


def test_compare_explains_shape_sign_factor_and_nonfinite():
    import numpy as np

    good = np.arange(1.0, 7.0).reshape(3, 2)
    wrong = [(good[:, 0], "shape"), (-good, "wrong sign"), (2 * good, "2 times"),
             (np.where(good > 5, np.nan, good), "nan or inf"), (good + [[0, 0], [0, 0], [0, 1]], "furthest off")]
    for got, words in wrong:
        with pytest.raises(ExerciseError, match=words):
            sl.exercises._core.compare(got, good, what="the value", inputs=good)
    sl.exercises._core.compare(good * (1 + 1e-6), good, what="the value")


def test_each_mistake_is_declared_once_as_a_slip():
    from scorelib.exercises._core import Slip, known, register

    with pytest.raises(ValueError, match="which words"):
        Slip(lambda x: x)  # no message of its own and no words: the tests could not check its failure
    with pytest.raises(ValueError, match="must be a Slip"):
        register("01", reference=abs, mistakes={"flipped sign": (lambda x: -x, "sign")})
    mistakes = {"sign": Slip(lambda x: -x, words="wrong sign"), "double": Slip(lambda x: 2 * x, "twice"),
                "quoted": Slip(lambda x: x + 1, lambda x: f"off by one at {x}", words="off by one")}
    assert known(mistakes, 3) == {"twice": 6, "off by one at 3": 4}  # the generic diagnoses need no entry
    assert known(mistakes, 3, output=lambda fn: [fn(1), fn(2)]) == {"twice": [2, 4], "off by one at 3": [2, 3]}
