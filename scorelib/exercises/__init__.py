"""Checks for the course's coding exercises.

Each notebook's Exercises section asks for a few functions (the ring's score, the SSM estimator, the KDE score,
...). ``sl.exercises.check_<name>(fn)`` grades a function against closed forms or scorelib's own implementation,
on inputs the notebook does not show, and answers in one of three ways:

- correct: it prints "correct" and what was checked;
- not attempted (the function still raises ``NotImplementedError``, as in the student edition): it prints that
  the exercise is still open, so a student's notebook runs on to the end;
- wrong: it raises :class:`ExerciseError`, whose message says what is wrong in words (the wrong shape, the wrong
  sign, a missing constant factor, a known slip such as a dropped term, or the input where the answer is furthest
  off), never a bare assertion.

Every check is listed in :data:`CHECKS` with a reference solution and the mistakes it must recognise; the unit tests
run each check on its reference (must pass), on a stub (must report "not attempted") and on each mistake, including
a flipped sign (must fail with the right message).
"""

from __future__ import annotations

from scorelib.exercises._core import CHECKS, Check, ExerciseError
from scorelib.exercises.nb01 import *  # noqa: F403
from scorelib.exercises.nb02 import *  # noqa: F403
from scorelib.exercises.nb03 import *  # noqa: F403
from scorelib.exercises.nb04 import *  # noqa: F403
from scorelib.exercises.nb05 import *  # noqa: F403
from scorelib.exercises.nb06 import *  # noqa: F403
from scorelib.exercises.nb07 import *  # noqa: F403

__all__ = ["CHECKS", "Check", "ExerciseError"] + [c.name for c in CHECKS]
