"""The common way to write this training loop, as the seed notebook did (with optax for its removed optimizers).

A per-step ``jax.jit`` update that evaluates the loss and then its gradient, NumPy swiss-roll batches made on the host
by scikit-learn every step, exact ISM with the trace of a ``vmap(jacfwd)`` Jacobian, and the loss pulled back with
``.item()`` every step. ``--fused`` uses ``jax.value_and_grad`` instead, the careful way to write the same loop.
"""

import time

process_start = time.perf_counter()
import sys  # noqa: E402
from functools import partial  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import BATCH_SIZE, LR, SEED, SIZES, STEPS, CompileTimer, report  # noqa: E402
from sklearn.datasets import make_swiss_roll  # noqa: E402

import_seconds = time.perf_counter() - process_start
timer = CompileTimer()
FUSED = "--fused" in sys.argv
rng = np.random.RandomState(SEED)


def sample_batch(size, noise=1.0):
    x, _ = make_swiss_roll(size, noise=noise, random_state=rng)
    return x[:, [0, 2]] / 10.0


def init_mlp(key, sizes):  # LeCun-normal weights and zero biases, the same network as sl.nets.mlp_init
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (m, n)) / jnp.sqrt(m), "b": jnp.zeros(n)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def net_apply(params, x):  # one point (2,) -> (2,), softplus between layers
    for layer in params[:-1]:
        x = jax.nn.softplus(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def compute_loss(params, inputs):
    jacobian = jax.jacfwd(net_apply, argnums=1)
    batch_jacobian = jax.vmap(partial(jacobian, params))(inputs)  # (batch, 2, 2)
    trace = jnp.trace(batch_jacobian, axis1=1, axis2=2)
    norm_sq = jnp.sum(jax.vmap(partial(net_apply, params))(inputs) ** 2, axis=1)
    return jnp.mean(trace + 0.5 * norm_sq)


optimizer = optax.adam(LR)


if FUSED:  # the careful variant: one evaluation gives the loss and its gradient

    @jax.jit
    def train_step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(compute_loss)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return loss, optax.apply_updates(params, updates), opt_state

else:  # as the seed notebook wrote it: the loss, then its gradient, inside one jitted step

    @jax.jit
    def train_step(params, opt_state, batch):
        loss = compute_loss(params, batch)
        grads = jax.grad(compute_loss)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return loss, optax.apply_updates(params, updates), opt_state


start = time.perf_counter()
params = init_mlp(jax.random.key(SEED), SIZES)
opt_state = optimizer.init(params)
loss_history = []
for _ in range(STEPS):
    loss, params, opt_state = train_step(params, opt_state, sample_batch(BATCH_SIZE))
    loss_history.append(loss.item())
train_seconds = time.perf_counter() - start
report(
    "naive loop, value_and_grad" if FUSED else "naive loop",
    process_start,
    import_seconds,
    train_seconds,
    timer.seconds,
    float(np.mean(loss_history[-100:])),
)
