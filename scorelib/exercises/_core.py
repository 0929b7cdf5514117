"""The machinery every exercise check shares: calling the student's function, comparing, explaining."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["CHECKS", "Check", "ExerciseError", "Slip", "agrees", "attempt", "compare", "compare_density", "known",
           "register"]


class ExerciseError(AssertionError):
    """A coding exercise's answer is wrong; the message says how, in a student's words."""


class _NotAttempted(Exception):
    """Raised inside a check when the student's function still raises ``NotImplementedError``."""


@dataclasses.dataclass(frozen=True)
class Slip:
    """A known mistake in an exercise: a wrong solution, and what the check tells the student who makes it.

    Each mistake is declared once, as a ``Slip`` in the check's ``mistakes``: the check recognises it by its output
    (:func:`known`), and the tests require that it fails with its message.

    Attributes:
      fn: the wrong solution, called like the reference.
      message: what the check says when an answer equals ``fn``'s output; a function of the check's inputs for a
        message that quotes them; ``None`` when another diagnosis catches the mistake (the wrong sign, a constant
        factor, the wrong shape, a nan, or a check of its own).
      words: what the check's message must contain (the tests require it); by default the whole ``message``.
    """

    fn: Callable
    message: str | Callable | None = None
    words: str | None = None

    def __post_init__(self):
        if self.words is None and not isinstance(self.message, str):
            raise ValueError("a Slip without a fixed message must say which words its failure message contains")

    @property
    def expected_words(self) -> str:
        return self.message if self.words is None else self.words


def known(mistakes: dict, *args, output: Callable | None = None) -> dict:
    """The ``known`` of :func:`compare`: ``{message: the output of the mistake}`` for each mistake with a message.

    Each wrong solution is called with ``args``; ``output(fn)`` instead builds the compared value when it takes
    more than one call (one per case) or a part of the result. A message that is a function gets ``args``.
    """
    return {(slip.message(*args) if callable(slip.message) else slip.message):
            (output(slip.fn) if output is not None else slip.fn(*args))
            for slip in mistakes.values() if slip.message is not None}


@dataclasses.dataclass(frozen=True)
class Check:
    """One exercise check and what the tests feed it.

    Attributes:
      name: the check's name in ``sl.exercises`` (``check_ring_score``).
      notebook: the notebook whose Exercises section asks for the function (``"02"``).
      fn: the check itself: ``fn(student_fn)`` prints "correct" or "not attempted yet", or raises.
      reference: a correct solution (the tests require ``fn(reference)`` to pass).
      mistakes: ``{description: Slip}``, the mistakes it recognises; always a flipped sign among them.
    """

    name: str
    notebook: str
    fn: Callable
    reference: Callable
    mistakes: dict

    def __call__(self, student_fn) -> None:
        self.fn(student_fn)


CHECKS: list[Check] = []


def register(notebook: str, reference: Callable, mistakes: dict):
    """Decorator: add a check to :data:`CHECKS` with its reference solution and the mistakes (:class:`Slip`) it
    must recognise."""
    if not all(isinstance(slip, Slip) for slip in mistakes.values()):
        raise ValueError("each mistake must be a Slip(wrong_solution, message, words)")
    if not any("sign" in slip.expected_words.lower() for slip in mistakes.values()):
        raise ValueError("every check must list a flipped-sign mistake whose message mentions the sign")

    def wrap(check_fn):
        name = check_fn.__name__

        def run(student_fn) -> None:
            __tracebackhide__ = True  # IPython and pytest hide this frame: the student sees the message
            if not callable(student_fn):
                raise ExerciseError(f"{name} takes your function itself (no parentheses); got {student_fn!r}")
            try:
                summary = check_fn(student_fn)
            except _NotAttempted:
                print(f"{name}: not attempted yet: {_title(student_fn)} still raises NotImplementedError. "
                      "Write it in the cell above, run that cell, then run this one again.")
                return
            print(f"{name}: correct. {summary}")

        run.__name__ = name
        run.__qualname__ = name
        run.__doc__ = check_fn.__doc__
        run.__module__ = check_fn.__module__
        CHECKS.append(Check(name, notebook, run, reference, dict(mistakes)))
        return run

    return wrap


def _title(fn) -> str:
    return f"`{getattr(fn, '__name__', 'your function')}`"


def attempt(student_fn, *args, **kwargs):
    """Call the student's function; ``NotImplementedError`` means "not attempted", other errors are explained."""
    __tracebackhide__ = True
    try:
        return student_fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotAttempted from None
    except Exception as err:  # the student's own bug: say where, keep the cause attached
        raise ExerciseError(
            f"{_title(student_fn)} raised {type(err).__name__}: {err} (called with inputs of shapes "
            f"{[np.shape(a) for a in args]}). Run it on a small input in a cell of your own to find out why."
        ) from err


DENSITY_HINT = ("Far from the data a density underflows to 0 and its log to -inf: compute the log-density with "
                "logsumexp, or the weights with a softmax, never log(sum(exp(...))).")
def agrees(got, expected, rtol: float, atol: float) -> bool:
    """Whether an answer is already right: then a check need not compute the known slips (a right answer is quick)."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False  # compare explains it
    expected = np.asarray(expected, dtype=np.float64)
    return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=rtol, atol=atol))


_NONFINITE_HINT = ("Look for a division by zero, the log or square root of a negative number or of 0, or an exp that "
                   "overflows; print the intermediate values at that input.")


def compare(got, expected, *, what: str, at: str = "x", inputs=None, rtol: float = 1e-4, atol: float = 1e-5,
            known: dict | None = None, nonfinite_hint: str = _NONFINITE_HINT) -> None:
    """Raise an :class:`ExerciseError` explaining how ``got`` differs from ``expected``; return if they agree.

    Args:
      got: the student's output.
      expected: the correct output, same shape.
      what: what the output is, for the message ("the score", "the loss").
      at: the name of the input, for the message.
      inputs: the inputs, one row per output row, to point at where the answer is furthest off.
      rtol, atol: the agreement required (float32 arithmetic: about 1e-4 relative).
      known: ``{message: the output a known slip gives}``: if ``got`` matches one, that message is raised.
      nonfinite_hint: what to say when ``got`` has nan or inf where the answer is finite.
    """
    __tracebackhide__ = True
    expected = np.asarray(expected, dtype=np.float64)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ExerciseError(f"{what} must be an array of numbers; got {type(got).__name__} ({err})") from None
    if got.shape != expected.shape:
        raise ExerciseError(
            f"{what} has shape {got.shape}; expected {expected.shape}, as the docstring says. Check which axis you "
            "sum or average over.")
    if not np.all(np.isfinite(got)):
        bad = np.argwhere(~np.isfinite(got))[0]
        where = f" at {at} = {np.round(np.asarray(inputs)[bad[0]], 3)}" if inputs is not None else ""
        raise ExerciseError(f"{what} contains nan or inf{where}, where the correct value is finite. {nonfinite_hint}")
    close = lambda a: np.allclose(a, expected, rtol=rtol, atol=atol)  # noqa: E731
    if close(got):
        return
    if close(-got):
        raise ExerciseError(f"{what} has the wrong sign: it is minus the correct value everywhere.")
    for message, wrong in (known or {}).items():
        if np.shape(wrong) == got.shape and np.allclose(got, wrong, rtol=rtol, atol=atol):
            raise ExerciseError(f"{what} is wrong: {message}")
    scale = float(np.vdot(got, expected) / max(np.vdot(expected, expected), 1e-300))
    if got.size > 1 and scale and close(got / scale):  # one number is always a multiple of another: no diagnosis
        raise ExerciseError(
            f"{what} is {scale:.4g} times the correct value everywhere: a constant factor is missing or extra "
            "(a 1/2, a 2, a variance where a standard deviation belongs?).")
    err = np.abs(got - expected).reshape(got.shape[0], -1).max(axis=1) if got.ndim else np.abs(got - expected)
    i = int(np.argmax(err)) if got.ndim else 0
    where = f" at {at} = {np.round(np.asarray(inputs)[i], 3)}" if (inputs is not None and got.ndim) else ""
    g = np.round(got[i] if got.ndim else got, 4)
    e = np.round(expected[i] if expected.ndim else expected, 4)
    raise ExerciseError(f"{what} is wrong; it is furthest off{where}: expected {e}, got {g}.")


def compare_density(got, expected, **kwargs) -> None:
    """:func:`compare` for densities, log densities and scores: a nan or inf gets the underflow hint."""
    __tracebackhide__ = True
    compare(got, expected, nonfinite_hint=DENSITY_HINT, **kwargs)
