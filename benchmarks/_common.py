"""Shared by the two training benchmarks: the workload, and compile-time accounting via jax.monitoring."""

import json
import os
import time

STEPS = int(os.environ.get("SCORELIB_BENCH_STEPS", 2000))  # fewer only for tests/test_benchmark.py's smoke run
BATCH_SIZE = 128
SIZES = (2, 128, 128, 2)  # MLP with softplus, as in the seed notebook
LR = 1e-3
SEED = 0

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class CompileTimer:
    """Sums the time JAX spends tracing, lowering and compiling, as reported by jax.monitoring."""

    def __init__(self):
        from jax import monitoring

        self.seconds = 0.0
        monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event, duration, **kwargs):
        if event in _COMPILE_EVENTS:
            self.seconds += duration


def report(
    name: str,
    process_start: float,
    import_seconds: float,
    train_seconds: float,
    compile_seconds: float,
    final_loss: float,
) -> None:
    """Print one JSON line for benchmarks/run.py."""
    print(
        json.dumps(
            {
                "name": name,
                "import_seconds": import_seconds,
                "train_seconds": train_seconds,
                "compile_seconds": compile_seconds,
                "steady_step_ms": 1e3 * (train_seconds - compile_seconds) / STEPS,
                "in_process_seconds": time.perf_counter() - process_start,
                "final_loss": final_loss,
            }
        )
    )
