"""The same work with scorelib: ``sl.train.fit`` with ``sl.losses.ism_loss`` and a fresh swiss-roll batch each step."""

import time

process_start = time.perf_counter()
import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import BATCH_SIZE, LR, SEED, SIZES, STEPS, CompileTimer, report  # noqa: E402

import scorelib as sl  # noqa: E402

import_seconds = time.perf_counter() - process_start
timer = CompileTimer()


def objective(params, batch, key):
    return sl.losses.ism_loss(lambda x: sl.nets.mlp_apply(params, x), batch)


start = time.perf_counter()
fit = sl.train.fit(
    objective,
    sl.nets.mlp_init(jax.random.key(SEED), SIZES),
    key=jax.random.key(SEED + 1),
    data=sl.data.swiss_roll,
    steps=STEPS,
    batch_size=BATCH_SIZE,
    optimizer=optax.adam(LR),
    progress=False,
)
train_seconds = time.perf_counter() - start
report("scorelib fit", process_start, import_seconds, train_seconds, timer.seconds, float(np.mean(fit.losses[-100:])))
