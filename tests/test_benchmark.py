"""The per-step cost benchmark: one entry per loss and dimension, and checked arguments; the training scripts run."""

import json
import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("script", ["train_naive.py", "train_scorelib.py"])
def test_training_benchmark_scripts_run(script):
    """benchmarks/run.py's training comparison, shortened: each script trains and prints its JSON line."""
    here = Path(__file__).resolve().parents[1] / "benchmarks"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "SCORELIB_BENCH_STEPS": "20", "SCORELIB_JAX_CACHE": "0"}
    done = subprocess.run([sys.executable, script], cwd=here, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["train_seconds"] > 0 and report["compile_seconds"] > 0
    assert abs(report["final_loss"]) < 1e3  # finite, and of the order of an ISM loss
