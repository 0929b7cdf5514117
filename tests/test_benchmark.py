"""The per-step cost benchmark: one entry per loss and dimension, and checked arguments."""

import pytest

import scorelib as sl


def test_step_cost_vs_dim_reports_every_loss_and_dimension():
    costs = sl.benchmark.step_cost_vs_dim((2, 3), loss_names=("ism",), width=8, batch_size=4, n_steps=2, repeats=1)
    assert set(costs) == {"ism"}
    for entry in costs.values():
        assert len(entry["step_seconds"]) == 2 and all(t > 0 for t in entry["step_seconds"])
        assert len(entry["compile_seconds"]) == 2 and all(t > 0 for t in entry["compile_seconds"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(loss_names=("nce",)), "unknown losses"),
        (dict(dims=(0,)), "dimension"),
        (dict(width=0), "width"),
        (dict(repeats=0), "repeats"),
    ],
)
def test_step_cost_vs_dim_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.benchmark.step_cost_vs_dim(**{"dims": (2,), **kwargs})
