# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · The swiss roll: Langevin sampling and sliced score matching
#
# The swiss roll is the classic toy for score-based models: a thin, curved, one-dimensional structure in the plane
# that no single Gaussian resembles. We learn its score with exact implicit score matching, sample it with Langevin
# dynamics, put a number on the quality of the samples, and then replace the exact Jacobian trace by a random
# projection, the step that makes score matching affordable in high dimensions. The setting follows the notebook
# *Generative Modeling by Estimating Gradients of Data Distribution in JAX* [6], once part of JAX's documentation.
#
# In this notebook you will:
#
# - train an MLP on the swiss roll with exact ISM [1] (notebook 02), $\mathbb E[\tfrac12|s_\theta|^2 +
#   \operatorname{tr}\nabla s_\theta]$, and compare it with the roll's exact score, $s^*(\mathbf x) =
#   (\mathbb E[\mathbf c(t)\mid\mathbf x] - \mathbf x)/\sigma^2$, computed by quadrature along the roll;
# - see why the noise term of Langevin dynamics, $\mathbf x \leftarrow \mathbf x + a\,s(\mathbf x) +
#   \sqrt{2a}\,\mathbf z$, matters, against plain gradient ascent and a step size that decays too fast;
# - measure sample quality with the energy distance $2\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'|$ and
#   its standard error, against a second draw of the data as the floor;
# - derive Hutchinson's trace estimator $\mathbb E[\mathbf v^\top A\mathbf v] = \operatorname{tr}A$ and sliced score
#   matching (SSM), check its unbiasedness numerically, measure the variance of four variants (and predict two of them), train
#   with it, and read the difference in Fisher divergence $\tfrac12\mathbb E|s_\theta - s^*|^2$;
# - time exact ISM, SSM and denoising score matching per training step for data dimensions 2 to 128, against the
#   cost model $d\,w(2d + w)$ of $d$ Jacobian-vector products through a width-$w$ network.

# %%
import time
from functools import cache, partial

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from scipy.spatial.distance import cdist

import scorelib as sl

sl.plotting.use_course_style()
notebook_start = time.perf_counter()

# %% [markdown]
# ## Hyperparameters

# %%
SEED = 0
NOISE = 1.0  # scikit-learn's make_swiss_roll noise, before the division by 10 (as in the JAX notebook [6])
SIZES = (2, 128, 128, 2)  # the JAX notebook's MLP, softplus activations
STEPS, BATCH_SIZE = 3000, 256
LR = 3e-3  # peak learning rate of the cosine schedule
lr_schedule = optax.cosine_decay_schedule(LR, STEPS)
WINDOW = (-1.5, 2.0)  # plotting window and uniform start, both axes
N_CURVE = 1500  # quadrature nodes along the roll, for its exact score and distances to its centre line

N_SAMPLES = 2000  # Langevin chains, and the size of each data draw compared against them
STEP_SIZE, N_STEPS = 1e-3, 1000  # Langevin step a: a tenth of the roll's squared thickness 0.1^2
TRAJ_STARTS = ((-1.5, -1.5), (0.0, 0.0), (1.5, 0.0))  # the JAX notebook's three starting points
TRAJ_EVERY = 25  # draw every 25th state of those chains
DECAY_EPS, DECAY_FACTOR, DECAY_N_STEPS = 1e-2, 0.9, 15  # the JAX notebook's decaying sampler
N_VARIANCE_DRAWS = 1500  # projection draws per variant, for the unbiasedness check and the variance table
N_FRESH = 20_000  # fresh data points for the Fisher divergences
DIMS = (2, 8, 32, 64, 128)  # data dimensions for the cost measurement
COST_WIDTH, COST_STEPS, COST_REPEATS = 128, 4, 3  # network width, timed steps per run, timed runs

N_WIDGET, BLOCK = 1000, 100  # widget chains; steps are run (and cached) in blocks of BLOCK
TABLE_SIZE = 351  # the widget's score table: TABLE_SIZE^2 grid points on the window
WIDGET_STEP_SIZES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
WIDGET_TEMPERATURES = (0.0, 0.1, 0.3, 0.5, 1.0, 2.0)
WIDGET_MAX_STEPS = 2000
SOLUTION_PROJECTIONS = (1, 4, 16)  # exercise 1: projections per point
SOLUTION_DRAWS, SOLUTION_BATCH = 400, 32  # exercise 1: projection draws, on the first 32 points of the batch
LOW_TEMPERATURE = 0.3  # exercise 2

key = jax.random.key(SEED)
(key_a, key_b, key_init, key_train, key_start, key_langevin, key_traj, key_decay, key_proj, key_ssm, key_fresh,
 key_widget) = jax.random.split(key, 12)

# %% [markdown]
# ## 1. The data, its exact score, and exact ISM
#
# `sl.data.swiss_roll` builds the roll the way scikit-learn's `make_swiss_roll` does, keeps the two coordinates
# that carry the spiral and divides by 10, like the JAX notebook [6]: $t \sim U(1.5\pi, 4.5\pi)$ and
# $\mathbf x = \mathbf c(t) + \sigma\mathbf z$ with the centre line $\mathbf c(t) = (t\cos t, t\sin t)/10$ and
# $\sigma = 0.1$. It is written in JAX so that the training loop can draw a fresh batch every step from an explicit
# key.
#
# Score matching never needs the true score, but here we can have it, which lets us say how good a learned score
# is. The density is a mixture over the curve, $p(\mathbf x) = \frac{1}{3\pi}\int \mathcal N(\mathbf x;
# \mathbf c(t), \sigma^2 I)\,dt$, so its score is a posterior mean,
#
# $$ s^*(\mathbf x) = \frac{\mathbb E[\mathbf c(t)\mid\mathbf x] - \mathbf x}{\sigma^2}, \qquad
#    p(t\mid\mathbf x) \propto e^{-|\mathbf x - \mathbf c(t)|^2/2\sigma^2}, $$
#
# which the midpoint rule on `N_CURVE` nodes computes accurately (checked below against autodiff of the log
# density, which checks the formula, and against twice as many nodes, which checks the quadrature). The same nodes
# draw the centre line in the figures.

# %%
def centre_line_nodes(n):
    """Midpoints t of n equal cells of [1.5 pi, 4.5 pi], and the centre line c(t) = t (cos t, sin t) / 10 there."""
    t = 1.5 * np.pi * (1 + 2 * (np.arange(n) + 0.5) / n)
    return t, np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 10


sigma_roll = NOISE / 10
t_nodes, centre_line = centre_line_nodes(N_CURVE)
np.testing.assert_allclose(centre_line, sl.data.swiss_roll_centre_line(N_CURVE)[1])  # the same, in scorelib (07)


def roll_log_density(x, curve, sigma):
    """log p(x) up to a constant: x (n, 2), curve (m, 2) quadrature nodes."""
    d2 = jnp.sum((x[:, None, :] - curve[None]) ** 2, axis=-1)
    return jax.scipy.special.logsumexp(-d2 / (2 * sigma**2), axis=1)


@jax.jit
def roll_score(x, curve, sigma):
    """The exact score (E[c(t) | x] - x) / sigma^2, with the posterior over the nodes."""
    d2 = jnp.sum((x[:, None, :] - curve[None]) ** 2, axis=-1)
    weights = jax.nn.softmax(-d2 / (2 * sigma**2), axis=1)
    return (weights @ curve - x) / sigma**2


def true_score(x, curve, sigma, chunk=2000):
    """roll_score in chunks of points, to keep the (chunk, m) weight matrix small."""
    return jnp.concatenate([roll_score(x[i:i + chunk], curve, sigma) for i in range(0, len(x), chunk)])


curve_nodes = jnp.asarray(centre_line, jnp.float32)
data_a = sl.data.swiss_roll(key_a, N_SAMPLES, noise=NOISE)
data_b = sl.data.swiss_roll(key_b, N_SAMPLES, noise=NOISE)  # an independent draw: the floor of any distance
autodiff = jax.jit(jax.vmap(jax.grad(lambda y: roll_log_density(y[None], curve_nodes, sigma_roll)[0])))
s_check = true_score(data_a[:100], curve_nodes, sigma_roll)
np.testing.assert_allclose(s_check, autodiff(data_a[:100]), atol=1e-2, rtol=1e-3)
s_fine = true_score(data_a[:100], jnp.asarray(centre_line_nodes(2 * N_CURVE)[1], jnp.float32), sigma_roll)
np.testing.assert_allclose(s_check, s_fine, atol=1e-3 * float(jnp.abs(s_fine).max()))

# %% [markdown]
# The loss is exact ISM, as in notebook 02. The JAX notebook [6] imported `jax.experimental.stax` and
# `jax.experimental.optimizers`, which have since moved out of `jax.experimental` (to `jax.example_libraries`,
# meant as examples rather than maintained APIs), so its imports fail today; here the network is `sl.nets` and the
# optimizer optax. `sl.nets.bind(sl.nets.mlp_apply, params)` turns parameters into the score function the losses and
# samplers take, the same as `lambda x: sl.nets.mlp_apply(params, x)`.

# %%
def ism_objective(params, batch, key):
    return sl.losses.ism_loss(sl.nets.bind(sl.nets.mlp_apply, params), batch)


roll_sampler = partial(sl.data.swiss_roll, noise=NOISE)  # (key, n) -> a fresh batch
params0 = sl.nets.mlp_init(key_init, SIZES)
start = time.perf_counter()
fit_ism = sl.train.fit(ism_objective, params0, key=key_train, data=roll_sampler, steps=STEPS,
                       batch_size=BATCH_SIZE, optimizer=optax.adam(lr_schedule))
train_seconds = time.perf_counter() - start
score_ism = sl.nets.bind(sl.nets.mlp_apply, fit_ism.params)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
sl.plotting.plot_loss(ax1, fit_ism.losses)
ax1.set(title="exact ISM loss", ylim=(float(np.percentile(fit_ism.losses, 0.5)) - 2, 5))
ax2.scatter(*np.asarray(data_a).T, s=1, alpha=0.3, color="k")
sl.plotting.plot_score_field(ax2, score_ism, WINDOW, WINDOW, n=25, title="learned score, length log(1+|s|)")
plt.show()

# %% [markdown]
# Near the roll the field points across it, towards its centre line; between the arms it points to the nearest arm.
# The JAX notebook [6] trained for 2000 steps of batch 128 at a constant rate $10^{-3}$; we take 3000 steps of batch
# 256 with a cosine-decayed rate, 3 times as many data points seen. How close this gets to $s^*$ is measured in
# section 4.
#
# ## 2. Langevin dynamics and why the noise matters
#
# Gradient ascent on $\log p$, $\mathbf x \leftarrow \mathbf x + a\,s(\mathbf x)$, climbs to the nearest high-density
# point and stays there. Langevin dynamics adds noise,
#
# $$ \mathbf x \leftarrow \mathbf x + a\,s(\mathbf x) + \sqrt{2a}\,\mathbf z, \qquad \mathbf z \sim \mathcal N(0, I), $$
#
# and the balance of the two terms is exactly what makes $p$ its stationary density (as $a \to 0$): the drift
# concentrates the points and the noise spreads them with a variance that grows like $2a$ per step, the same rate at
# which the drift removes it where $s = \nabla\log p$ (Welling & Teh [5] use the same update with minibatch
# gradients). Below, three chains from the JAX notebook's starting points,
# every 25th state drawn.

# %%
traj = sl.samplers.langevin(score_ism, jnp.array(TRAJ_STARTS), key_traj, step_size=STEP_SIZE, n_steps=N_STEPS,
                            return_trajectory=True).trajectory
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.scatter(*np.asarray(data_a).T, s=1, alpha=0.15, color="k")
sl.plotting.plot_trajectories(ax, traj[::TRAJ_EVERY])
ax.set(xlim=WINDOW, ylim=WINDOW, aspect="equal", title=f"Langevin chains, a = {STEP_SIZE}, every {TRAJ_EVERY}th step")
plt.show()

# %% [markdown]
# Now 2000 chains from a broad uniform start on the plotting window: Langevin (temperature 1) and gradient ascent
# (temperature 0, no noise), the same steps and keys otherwise.

# %%
x0 = jax.random.uniform(key_start, (N_SAMPLES, 2), minval=WINDOW[0], maxval=WINDOW[1])
samples_langevin = sl.samplers.langevin(score_ism, x0, key_langevin, step_size=STEP_SIZE, n_steps=N_STEPS).samples
samples_ascent = sl.samplers.langevin(score_ism, x0, key_langevin, step_size=STEP_SIZE, n_steps=N_STEPS,
                                      temperature=0.0).samples

# %% [markdown]
# The JAX notebook [6] sampled with $\mathbf x \leftarrow \mathbf x + \frac{\varepsilon}{2}s(\mathbf x) +
# \sqrt{\varepsilon}\,T\,\mathbf z$, $\varepsilon$ starting at $10^{-2}$ and multiplied by 0.9 after each of 15
# steps. The steps sum to $\sum_t \varepsilon_t/2 = 0.005\,(1 - 0.9^{15})/0.1 \approx 0.04$. That is enough to
# approach the roll, because the score is steep (it grows like distance$/0.1^2$ across the roll), but the step and the
# noise die together: after a few steps the chains stop moving, wherever they are. Such a sampler returns a copy of
# the start pulled towards the nearest arm, not $p$. (Its $T$ also multiplies the standard deviation, so it is the
# square root of the usual temperature.) Here it is, written out, and checked against `sl.samplers.decaying_langevin`,
# which compiles the same loop (step $t$ uses the key `split(key, n_steps)[t]` in both):

# %%
def decaying_sampler(score_fn, x, key, *, eps, decay, n_steps, temperature=1.0):
    for k in jax.random.split(key, n_steps):
        x = x + eps / 2 * score_fn(x) + jnp.sqrt(eps) * temperature * jax.random.normal(k, x.shape)
        eps = eps * decay
    return x


decay_settings = dict(eps=DECAY_EPS, decay=DECAY_FACTOR, n_steps=DECAY_N_STEPS)
samples_decaying = sl.samplers.decaying_langevin(score_ism, x0, key_decay, **decay_settings).samples
np.testing.assert_allclose(decaying_sampler(score_ism, x0, key_decay, **decay_settings), samples_decaying,
                           rtol=1e-5, atol=1e-5)

# %% [markdown]
# ## 3. A number for sample quality: the energy distance
#
# The energy distance between samples $X$ and $Y$ is $2\,\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'|$
# [4]. It is zero exactly when the two distributions agree and needs no bandwidth. Estimated from samples it is
# noisy, so each value needs its standard error: to first order the estimate is a sum of independent contributions,
# one per point ($2\,\overline{|x_i - Y|} - 2\,\overline{|x_i - X|}$ for a point $x_i$ of $X$, and likewise for
# $Y$), and its variance is the variance of those contributions over the sample size. (When the two distributions
# agree these contributions vanish in expectation and the error is of second order: at the floor the printed error is
# only an order of magnitude.) Written out, and checked against `sl.metrics.energy_distance(..., return_se=True)`,
# which the rest of the course uses:

# %%
def energy_distance_with_se(x, y):
    """The energy distance between samples x (n, d) and y (m, d), and its first-order standard error."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dxy, dxx, dyy = cdist(x, y), cdist(x, x), cdist(y, y)
    value = 2 * dxy.mean() - dxx.mean() - dyy.mean()
    contrib_x = 2 * dxy.mean(axis=1) - 2 * dxx.mean(axis=1)
    contrib_y = 2 * dxy.mean(axis=0) - 2 * dyy.mean(axis=1)
    return value, float(np.sqrt(contrib_x.var() / len(x) + contrib_y.var() / len(y)))


def centre_line_position(x, curve, t):
    """Distance from each point of x (n, 2) to the nearest node of the centre line, and that node's t."""
    d = cdist(np.asarray(x, np.float64), curve)
    return d.min(axis=1), t[d.argmin(axis=1)]


np.testing.assert_allclose(energy_distance_with_se(data_b, data_a),
                           sl.metrics.energy_distance(data_b, data_a, return_se=True), rtol=1e-9)

# %% [markdown]
# Two independent draws of the data give the floor for samples of this size. Next to each energy distance: how far
# the points sit from the roll's centre line (the median distance; for the data it is about $0.674\,\sigma = 0.067$,
# the median of a half-normal), and which share of them lies on the inner and on the outer third of the roll (by the $t$
# of the nearest centre-line node; a third each for the data, since $t$ is uniform).

# %%
# NBVAL_CHECK_OUTPUT
third = (t_nodes[-1] - t_nodes[0]) / 3
sample_sets = {
    "second draw of the data (floor)": data_b,
    "Langevin, exact-ISM score": samples_langevin,
    "decaying sampler of [6]": samples_decaying,
    "gradient ascent, exact-ISM score": samples_ascent,
    "the uniform start": x0,
}
quality, spread, inner_share, outer_share = {}, {}, {}, {}
print(f"{'':33s} energy distance   median distance   share on inner / outer third")
for name, x in sample_sets.items():
    quality[name], spread[name] = sl.metrics.energy_distance(x, data_a, return_se=True)
    dist, t = centre_line_position(x, centre_line, t_nodes)
    inner_share[name], outer_share[name] = np.mean(t < t_nodes[0] + third), np.mean(t > t_nodes[-1] - third)
    print(f"{name:33s} {quality[name]:.3f} ± {spread[name]:.3f} {np.median(dist):13.3f} "
          f"{inner_share[name]:17.2f} / {outer_share[name]:.2f}")
values = list(quality.values())
assert values[0] < values[1] < values[2] < values[3] < values[4]
names = list(quality)
gaps = [(values[i + 1] - values[i]) / np.hypot(spread[names[i]], spread[names[i + 1]]) for i in range(len(names) - 1)]
assert min(gaps) > 2, "each sampler should be more than two standard errors worse than the one before"
assert inner_share["Langevin, exact-ISM score"] < 0.27, "Langevin under-populates the inner third (data: 1/3 ± 0.01)"
assert outer_share["decaying sampler of [6]"] > outer_share["Langevin, exact-ISM score"] > 0.37

# %%
fig, axes = plt.subplot_mosaic([["lan", "dec", "asc"], ["across", "across", "along"]], figsize=(12, 7.2),
                               height_ratios=(1.6, 1))
bins_across, bins_along = np.linspace(0, 0.5, 26), np.linspace(t_nodes[0], t_nodes[-1], 13)
for x, label, color in ((data_a, "data", "0.6"), (samples_langevin, "Langevin", "C0"),
                        (samples_decaying, "decaying sampler of [6]", "C1"), (samples_ascent, "gradient ascent", "C3")):
    dist, t = centre_line_position(x, centre_line, t_nodes)
    style = dict(histtype="stepfilled", color=color) if label == "data" else dict(histtype="step", color=color, lw=1.5)
    axes["across"].hist(np.minimum(dist, bins_across[-1]), bins_across, density=True, label=label, **style)
    axes["along"].hist(t, bins_along, density=True, label=label, **style)
for key_ax, x, title, color in (("lan", samples_langevin, "Langevin", "C0"),
                                ("dec", samples_decaying, "decaying sampler of [6]", "C1"),
                                ("asc", samples_ascent, "gradient ascent", "C3")):
    ax = axes[key_ax]
    ax.plot(*centre_line.T, color="k", lw=0.8)
    ax.scatter(*np.asarray(x).T, s=1.5, lw=0, alpha=0.8, color=color)
    ax.set(xlim=WINDOW, ylim=WINDOW, aspect="equal", title=title, xlabel="$x_1$", ylabel="$x_2$")
axes["across"].set(xlabel="distance to the centre line (last bin: 0.5 and beyond)", ylabel="density",
                   ylim=(0, 20), title="across the roll (gradient ascent's bar is cut off)")
axes["along"].set(xlabel="position along the roll, $t$ of the nearest node", ylabel="density", title="along the roll")
axes["across"].legend()
plt.show()

# %% [markdown]
# The top row draws the samples over the roll's centre line $\mathbf c(t)$; the bottom row shows what the numbers
# above measure. Gradient ascent collapses the chains onto a few short stretches of the centre line, the maxima of
# the learned density (its median distance to the centre line is far below the data's): the noise term is what
# fills the roll's width. Langevin and the decaying sampler spread across the roll alike, both somewhat wider than
# the data (compare the median distances); they differ along the roll. The decaying sampler's chains froze after a
# few steps near where they started, so each arm keeps the share of the uniform start that was nearest to it: the
# outer arm, with the largest catchment, gets the largest share (the "outer third" column, close to gradient ascent's,
# which also only moved each point to its nearest arm). Langevin moves part of that mass along the roll and scores a
# lower energy distance, but it is not at the floor: the inner third of the roll is under-populated (the "inner
# third" column), and the samples sit wider than the data. Two causes can produce that shortfall, and this table
# cannot tell them apart: chains that have not yet diffused along the spiral into the inner arm, and errors of the
# learned score there (section 4 prints how large the score error is). Running the same chains with the exact score
# `true_score` separates them (Exercise 5). Each sampler is more than two combined standard errors worse
# than the one before it in the table (asserted).

# %% [markdown]
# ## 4. Sliced score matching
#
# Exact ISM needs $\operatorname{tr}\nabla s_\theta = \sum_i \partial_i s_i$: $d$ forward-mode products per batch.
# **Hutchinson's estimator** [3] replaces it by one: for a random vector $\mathbf v$ with $\mathbb E[\mathbf v\mathbf
# v^\top] = I$,
#
# $$ \mathbb E_{\mathbf v}[\mathbf v^\top A\,\mathbf v] = \mathbb E\Big[\sum_{ij} v_i A_{ij} v_j\Big]
#    = \sum_{ij} A_{ij}\,\mathbb E[v_i v_j] = \sum_i A_{ii} = \operatorname{tr}A, $$
#
# and $A\mathbf v = \nabla s_\theta\,\mathbf v$ is a single Jacobian-vector product (`jax.jvp`). The condition is
# on the whole covariance: the blog post *Score Matching, Toy Datasets, and JAX* [7] asks for zero mean and unit
# variance, which is not enough; the coordinates must also be uncorrelated. This gives **SSM-VR**,
# $\mathbb E[\mathbf v^\top\nabla s_\theta\,\mathbf v + \tfrac12|s_\theta|^2]$, the form in that post. Song et al.
# [2] derived sliced score matching by projecting the score itself onto $\mathbf v$, which gives **SSM**,
# $\mathbb E[\mathbf v^\top\nabla s_\theta\,\mathbf v + \tfrac12(\mathbf v^\top s_\theta)^2]$; since $\mathbb
# E[(\mathbf v^\top s)^2] = |s|^2$ both have the same expectation, exact ISM.
#
# The JAX notebook [6] wrote SSM in a few lines with `jax.jvp`. Because the network acts on each row of the batch
# separately, one `jvp` with a different $\mathbf v$ in each row gives every point's $\nabla s_\theta(\mathbf x_n)
# \mathbf v_n$ at once. Written out, and checked against `sl.losses.ssm_loss` with the same key:

# %%
def ssm_inline(score_fn, x, key):
    v = jax.random.normal(key, x.shape)  # one Gaussian direction per point
    s, jv = jax.jvp(score_fn, (x,), (v,))  # s(x) and the Jacobian-vector products J(x) v
    return jnp.mean(jnp.sum(v * jv, axis=1) + 0.5 * jnp.sum(v * s, axis=1) ** 2)


batch = data_a[:BATCH_SIZE]
np.testing.assert_allclose(jax.jit(ssm_inline, static_argnums=0)(score_ism, batch, key_ssm),
                           sl.losses.ssm_loss(score_ism, batch, key_ssm), rtol=1e-5)

# %% [markdown]
# Now check the unbiasedness on the trained network and one batch, averaging 1500 independent projection draws of
# each of four variants (SSM and SSM-VR, Gaussian and Rademacher $\mathbf v$):

# %%
def ssm_draws(score_fn, x, key, n_draws, **kwargs):
    """The one-projection loss on the batch x for n_draws independent projection keys."""
    return jax.vmap(lambda k: sl.losses.ssm_loss(score_fn, x, k, n_projections=1, **kwargs))(
        jax.random.split(key, n_draws))


ism_value = float(sl.losses.ism_loss(score_ism, batch))
variants = {
    "SSM, Gaussian v": dict(variance_reduced=False, projection="gaussian"),
    "SSM, Rademacher v": dict(variance_reduced=False, projection="rademacher"),
    "SSM-VR, Gaussian v": dict(variance_reduced=True, projection="gaussian"),
    "SSM-VR, Rademacher v": dict(variance_reduced=True, projection="rademacher"),
}
draws = {name: np.asarray(ssm_draws(score_ism, batch, key_proj, N_VARIANCE_DRAWS, **kw))
         for name, kw in variants.items()}

# %%
# NBVAL_CHECK_OUTPUT
print(f"exact ISM on the batch: {ism_value:.2f}")
for name, d in draws.items():
    se = d.std() / np.sqrt(len(d))
    print(f"{name:22s} mean of {len(d)} projections {d.mean():7.1f}  (standard error {se:.2f})")
    assert abs(d.mean() - ism_value) < 4 * se

# %% [markdown]
# Every mean is within a few standard errors of exact ISM (asserted: within 4). **Variance.** Each estimate uses one
# $\mathbf v$ per point of the batch. The spread over projection draws depends on the variant, and can be predicted.
# Write $S = \tfrac12(\nabla s + \nabla s^\top)$ (only the symmetric part survives in $\mathbf v^\top A\mathbf v$).
# For a Gaussian $\mathbf v$, $\operatorname{Var}(\mathbf v^\top A\mathbf v) = 2\|S\|_F^2$; for a Rademacher
# $\mathbf v$ (entries $\pm1$) the diagonal contributes nothing, since $v_i^2 = 1$ exactly, and the variance is
# $2(\|S\|_F^2 - \sum_i S_{ii}^2)$. SSM adds the randomness of $\tfrac12(\mathbf v^\top s)^2$ on top. The batch mean
# divides each point's variance by the batch size squared.

# %%
def predicted_std(score_fn, x, rademacher):
    jac = jax.vmap(jax.jacfwd(lambda y: score_fn(y[None])[0]))(x)  # (n, d, d), fine for d = 2
    sym = 0.5 * (jac + jnp.swapaxes(jac, 1, 2))
    per_point = 2 * jnp.sum(sym**2, axis=(1, 2))
    if rademacher:
        per_point -= 2 * jnp.sum(jnp.diagonal(sym, axis1=1, axis2=2) ** 2, axis=1)
    return float(jnp.sqrt(jnp.sum(per_point)) / x.shape[0])


# %%
# NBVAL_CHECK_OUTPUT
stds = {name: d.std() for name, d in draws.items()}
print("variant                 std over projections   predicted (VR only)")
for name in draws:
    pred = predicted_std(score_ism, batch, "Rademacher" in name) if "VR" in name else float("nan")
    print(f"{name:22s} {stds[name]:14.1f} {pred:20.2f}")
for name in ("SSM-VR, Gaussian v", "SSM-VR, Rademacher v"):
    # the relative standard error of a std from 1500 draws is 1.8%
    assert abs(stds[name] / predicted_std(score_ism, batch, "Rademacher" in name) - 1) < 0.1
for kind in ("SSM", "SSM-VR"):
    ratio = stds[f"{kind}, Gaussian v"] / stds[f"{kind}, Rademacher v"]
    print(f"{kind}: Gaussian / Rademacher std {ratio:.1f}")
    assert ratio > 1.5
best_variant = min(stds, key=stds.get)
print(f"least noisy: {best_variant}")

# %% [markdown]
# The predictions for SSM-VR match the measured spread (asserted within 10%, five times the error of a standard
# deviation from 1500 draws). Rademacher projections cut it by the printed factor of about two: in two dimensions
# the diagonal of $S$ carries much of $\|S\|_F^2$ (in high dimensions the off-diagonal terms dominate and the gain
# shrinks). The surprise is that the *variance-reduced* loss is noisier than plain SSM here. The swiss roll is thin:
# near the data $\nabla s \approx -\mathbf n\mathbf n^\top/\sigma^2$ and $s \approx s_n\mathbf n$ for the normal
# $\mathbf n$ across the roll, so SSM's two terms are $(\mathbf v\cdot\mathbf n)^2(\tfrac12 s_n^2 - 1/\sigma^2)$:
# both fluctuate with the same $(\mathbf v\cdot\mathbf n)^2$, with opposite signs, and partly cancel. SSM-VR
# replaces the second by its mean and loses the cancellation. "Variance-reduced" is a statement about the norm term
# alone, not a guarantee for the sum; measure before choosing.
#
# Now train the same network from the same initialisation with the least noisy variant, one projection per point,
# and compare it with the ISM-trained one.

# %%
def ssm_objective(params, batch, key, *, variant):
    return sl.losses.ssm_loss(sl.nets.bind(sl.nets.mlp_apply, params), batch, key, n_projections=1, **variant)


start = time.perf_counter()
fit_ssm = sl.train.fit(partial(ssm_objective, variant=variants[best_variant]), params0, key=key_train,
                       data=roll_sampler, steps=STEPS, batch_size=BATCH_SIZE, optimizer=optax.adam(lr_schedule))
train_seconds += time.perf_counter() - start
score_ssm = sl.nets.bind(sl.nets.mlp_apply, fit_ssm.params)
samples_ssm = sl.samplers.langevin(score_ssm, x0, key_langevin, step_size=STEP_SIZE, n_steps=N_STEPS).samples

# %% [markdown]
# How good is each score? Notebook 02's identity says that the ISM loss $J(\theta)$ and the Fisher divergence
# $D_F(\theta) = \tfrac12\mathbb E|s_\theta - s^*|^2$ differ by a constant of the data, $J + C = D_F$ with
# $C = \tfrac12\mathbb E|s^*|^2$. With the exact score of section 1 all three can be estimated on the same 20000
# fresh points, each with its standard error; the difference between the two models is a paired one (same points).

# %%
x_fresh = sl.data.swiss_roll(key_fresh, N_FRESH, noise=NOISE)
s_fresh = true_score(x_fresh, curve_nodes, sigma_roll)
c_points = np.asarray(0.5 * jnp.sum(s_fresh**2, axis=1))


@partial(jax.jit, static_argnums=0)
def per_point_terms(score_fn, x, s_true):
    """Per point: the ISM loss and half the squared error against the true score."""
    return sl.losses.ism_loss(score_fn, x, reduction="none"), 0.5 * jnp.sum((score_fn(x) - s_true) ** 2, axis=1)


per_point = {}
for name, score_fn in (("ISM-trained", score_ism), ("SSM-trained", score_ssm)):
    j_points, df_points = per_point_terms(score_fn, x_fresh, s_fresh)
    per_point[name] = {"ISM loss J": np.asarray(j_points), "Fisher divergence D_F": np.asarray(df_points)}

# %%
# NBVAL_CHECK_OUTPUT
c_value, c_se = sl.metrics.mean_with_se(c_points)
print(f"C = 0.5 E|s*|^2 = {c_value:.1f} ± {c_se:.1f}  (rms true score {np.sqrt(2 * c_value):.1f})")
for name, terms in per_point.items():
    j, j_se = sl.metrics.mean_with_se(terms["ISM loss J"])
    df, df_se = sl.metrics.mean_with_se(terms["Fisher divergence D_F"])
    gap, gap_se = sl.metrics.mean_with_se(terms["ISM loss J"] + c_points - terms["Fisher divergence D_F"])
    print(f"{name}: J = {j:.1f} ± {j_se:.1f}, D_F = {df:.1f} ± {df_se:.1f}, D_F / C = {df / c_value:.2f}; "
          f"J + C - D_F = {gap:.1f} ± {gap_se:.1f}")
    assert abs(gap) < 4 * gap_se, "J + C = D_F holds in expectation"
diff, diff_se = sl.metrics.mean_with_se(per_point["SSM-trained"]["ISM loss J"] - per_point["ISM-trained"]["ISM loss J"])
df_diff = sl.metrics.mean_with_se(per_point["SSM-trained"]["Fisher divergence D_F"]
                                  - per_point["ISM-trained"]["Fisher divergence D_F"])
print(f"paired differences, SSM-trained minus ISM-trained: J {diff:.1f} ± {diff_se:.1f}, D_F {df_diff}")
assert diff > 10 * diff_se
assert abs(diff - df_diff.value) < 4 * np.hypot(diff_se, df_diff.se), "the J difference is the D_F difference"
ed_ssm, ed_ssm_se = sl.metrics.energy_distance(samples_ssm, data_a, return_se=True)
ed_gap = sl.metrics.Estimate(ed_ssm - quality["Langevin, exact-ISM score"],
                             float(np.hypot(ed_ssm_se, spread["Langevin, exact-ISM score"])))
print(f"energy distance of Langevin samples: ISM-trained {quality['Langevin, exact-ISM score']:.3f} ± "
      f"{spread['Langevin, exact-ISM score']:.3f}, SSM-trained {ed_ssm:.3f} ± {ed_ssm_se:.3f}; "
      f"difference {ed_gap}")
assert ed_ssm < 2 * quality["Langevin, exact-ISM score"] and ed_ssm < quality["gradient ascent, exact-ISM score"]
assert abs(ed_ssm - quality["Langevin, exact-ISM score"]) < 3 * np.hypot(ed_ssm_se, spread["Langevin, exact-ISM score"])

# %% [markdown]
# **Reading the numbers.** The printed $J + C - D_F$ is zero within its standard error for both models, as the
# identity says, and the paired difference of the ISM losses equals the paired difference of the Fisher
# divergences within their standard errors (both printed, asserted within four): the SSM-trained model's higher ISM
# loss is extra Fisher divergence. That difference is many standard errors from zero (asserted: more than 10), so it
# is not noise but a worse score. It is not a difference of 8 nats either: the ISM loss is not a log-likelihood, and $D_F$ is half a mean
# squared error of the score, in units of 1/length$^2$. The printed $D_F/C$ is the squared rms error of the score
# over the squared rms of the true score: about a third for the ISM-trained score and about a half for the
# SSM-trained one. That is a large error; across the thin roll $|s^*|$ reaches $1/\sigma = 10$ one $\sigma$ from
# the centre line (the printed rms true score). Yet the samples barely show it: the difference of the two energy
# distances, printed last, is within about one combined standard error (asserted: within three). A score that is too flat across the roll still sends the chains to the
# right places along it; the widening it causes (section 3's median distances) costs little in energy distance.
# One likely reason for SSM's larger error after the same 3000 steps is its noisier gradient (one projection per
# point, the variance table above); Exercise 4 tests it. In the loss curve below, the dashed line is the floor $-C$:
# the SSM loss estimates $J = D_F - C$, so its distance above the line at the end is the SSM-trained score's $D_F$
# (about $C/2$, the printed ratio), not noise that more steps would average away.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
sl.plotting.plot_loss(ax1, fit_ssm.losses, floor=-c_value)
ax1.set(title=f"loss: {best_variant}", ylim=(-c_value - 5, 5))
ax1.legend(loc="upper right")
ax2.plot(*centre_line.T, color="k", lw=0.8)
ax2.scatter(*np.asarray(samples_ssm).T, s=1.5, lw=0, alpha=0.8, color="C0")
ax2.set(xlim=WINDOW, ylim=WINDOW, aspect="equal", title="Langevin samples, SSM-trained score")
plt.show()

# %% [markdown]
# ## 5. Why slicing exists: cost against dimension
#
# `sl.benchmark.step_cost_vs_dim` times one compiled Adam step of each loss for an MLP $d \to w \to w \to d$
# ($w = 128$) and a batch of 128 random points, for each $d$. Exact ISM does $d$ Jacobian-vector products, SSM one,
# DSM none (one forward pass at a noisy point). These are real timings on the machine that ran this notebook, so the
# numbers vary from run to run; the assertions are on ratios and slopes, with wide margins.
#
# **A cost model.** Per point, a forward pass costs about $dw + w^2 + wd = w(2d + w)$ multiply-adds, and a
# Jacobian-vector product about as much again. Exact ISM's $d$ products (and their backward pass) therefore cost
# about $d\,w(2d + w)$: neither linear nor quadratic in $d$, with a log-log slope $(4d + w)/(2d + w)$ that goes from 1
# for $d \ll w$ through 1.5 at $d = w/2 = 64$ towards 2 for $d \gg w$. At small $d$ the parts of a step that do not
# grow with $d$ (the optimizer, the $w^2$ middle layer of SSM-sized work, launching the computation) dominate, so
# there the measured slope is below 1.

# %%
start = time.perf_counter()
costs = sl.benchmark.step_cost_vs_dim(DIMS, width=COST_WIDTH, n_steps=COST_STEPS, repeats=COST_REPEATS)
cost_seconds = time.perf_counter() - start
ism_ms, ssm_ms, dsm_ms = (1e3 * np.array(costs[name]["step_seconds"]) for name in ("ism", "ssm", "dsm"))
ratios = ism_ms / ssm_ms
print("    d   ISM ms/step   SSM ms/step   DSM ms/step   ISM / SSM   (ISM / SSM) / d")
for i, d in enumerate(DIMS):
    print(f"{d:5d} {ism_ms[i]:13.2f} {ssm_ms[i]:13.2f} {dsm_ms[i]:13.2f} {ratios[i]:11.1f} {ratios[i] / d:17.2f}")
large = np.array(DIMS) >= 32
slope = np.polyfit(np.log(np.array(DIMS)[large]), np.log(ism_ms[large]), 1)[0]
model_slopes = [(4 * d + COST_WIDTH) / (2 * d + COST_WIDTH) for d in (32, 128)]
print(f"exact ISM: log-log slope over d = 32..128 is {slope:.2f} "
      f"(cost model: {model_slopes[0]:.2f} at d = 32 to {model_slopes[1]:.2f} at d = 128)")
print(f"measured in {cost_seconds:.0f} s, of which compilation {sum(sum(c['compile_seconds']) for c in costs.values()):.0f} s")
assert 0.8 < slope < 2.6, "exact ISM's cost should grow roughly between linearly and quadratically in d"
assert ratios[DIMS.index(64)] >= 10, "exact ISM should cost at least 10x SSM per step at d = 64"

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for ms, name, marker in ((ism_ms, "exact ISM", "o"), (ssm_ms, "SSM", "s"), (dsm_ms, "DSM", "^")):
    ax.plot(DIMS, ms, marker + "-", label=name)
dims_fine = np.geomspace(DIMS[0], DIMS[-1], 50)
model = dims_fine * (2 * dims_fine + COST_WIDTH)
ax.plot(dims_fine, ism_ms[-1] * model / model[-1], "k:", label="cost model $d\\,(2d + w)$, through the last point")
ax.plot(dims_fine, ism_ms[-1] * dims_fine / DIMS[-1], color="0.6", ls="--", lw=1, label="slope 1")
ax.set(xscale="log", yscale="log", xlabel="data dimension d", ylabel="ms per training step",
       title="per-step cost, this CPU")
ax.set_xticks(DIMS, [str(d) for d in DIMS])
ax.xaxis.set_minor_locator(plt.NullLocator())
ax.legend()
plt.show()

# %% [markdown]
# Exact ISM's cost grows faster than linearly in $d$: the printed log-log slope over $d$ = 32 to 128 lies between
# 1 and 2 (asserted between 0.8 and 2.6, a wide range because timings on a shared machine scatter from run to run),
# to be read against the cost model's local slopes printed beside it. The model leaves out the costs that do not
# grow with $d$, which flatten the measured curve at small $d$ (compare the first points with the dotted model curve);
# a busy machine steepens or flattens the rest by chance, so the slope is a rough number. SSM and DSM stay
# nearly flat, growing only through the first and last layers of the network. The last column is the ratio per
# dimension: once the $d$ products dominate, each dimension costs exact ISM a fixed fraction of an SSM step (read it
# at $d$ = 64 and 128), not a whole one, because an SSM step also pays for the score itself, the backward pass and
# the optimizer. At $d = 64$, an 8x8 image, exact ISM costs the printed ratio, tens of SSM steps; for a 32x32 colour
# image, $d = 3072$, the cost model predicts a ratio of the order of a thousand. Notebook 06 works with $d = 64$.
#
# ## 6. Interactive: step size, steps and temperature
#
# Langevin chains (1000 of the uniform start) with the ISM-trained score. Temperature $T$ scales the noise variance:
# $T = 0$ is gradient ascent, $T < 1$ samples a sharpened density $p^{1/T}$, $T > 1$ a flattened one. So that every
# move answers at once, the chains do not call the network: its score is tabulated once on a $351 \times 351$ grid
# over the window and interpolated bilinearly (the error is printed below), steps run in compiled blocks of 100, and
# every block is cached, so a setting seen before, or one more block, redraws at once. The right panel compares the
# spread across the roll with the data's, the quantity that the step size and temperature change most visibly.

# %%
_, _, table_points = sl.plotting.grid_2d(WINDOW, WINDOW, TABLE_SIZE)
score_table = jax.jit(score_ism)(table_points).reshape(TABLE_SIZE, TABLE_SIZE, 2)  # [row (x2), column (x1), :]


def table_score(table, x, *, window):
    """Bilinear interpolation of a score tabulated on a square grid over window x window (clamped at its edges)."""
    n = table.shape[0]
    u = jnp.clip((x - window[0]) / (window[1] - window[0]) * (n - 1), 0, n - 1 - 1e-3)
    i = u.astype(jnp.int32)
    f = u - i
    fx, fy = f[:, :1], f[:, 1:]
    row0 = (1 - fx) * table[i[:, 1], i[:, 0]] + fx * table[i[:, 1], i[:, 0] + 1]
    row1 = (1 - fx) * table[i[:, 1] + 1, i[:, 0]] + fx * table[i[:, 1] + 1, i[:, 0] + 1]
    return (1 - fy) * row0 + fy * row1


score_interp = partial(table_score, score_table, window=WINDOW)
interp_error = float(jnp.sqrt(jnp.mean((score_interp(data_a) - score_ism(data_a)) ** 2) / jnp.mean(score_ism(data_a) ** 2)))
print(f"relative rms error of the tabulated score on the data: {interp_error:.1e}")
assert interp_error < 0.01


def cached_chains(score_fn, x0, key, block):
    """A cached function (step_size, n_steps, temperature) -> chains, built block by block from x0."""

    @cache
    def chains(step_size, n_steps, temperature):
        if n_steps == 0:
            return x0
        x = chains(step_size, n_steps - block, temperature)
        return sl.samplers.langevin(score_fn, x, jax.random.fold_in(key, n_steps // block), step_size=step_size,
                                    n_steps=block, temperature=temperature).samples

    return chains


def draw_langevin(chains, data, curve, t, window, step_size=STEP_SIZE, n_steps=N_STEPS, temperature=1.0):
    x = np.asarray(chains(step_size, n_steps, temperature))
    dist_data, _ = centre_line_position(data, curve, t)
    dist, _ = centre_line_position(x, curve, t)
    bins = np.linspace(0, 0.5, 26)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.8))
    ax1.plot(*curve.T, color="k", lw=0.8)
    ax1.scatter(*x.T, s=2, lw=0, alpha=0.8, color="C0")
    ax1.set(xlim=window, ylim=window, aspect="equal", xticks=[-1, 0, 1, 2], yticks=[-1, 0, 1, 2],
            title=f"a = {step_size:.0e}, {n_steps} steps, T = {temperature}")
    ax2.hist(dist_data, bins, density=True, histtype="stepfilled", color="0.75", label="data")
    ax2.hist(np.minimum(dist, bins[-1]), bins, density=True, histtype="step", color="C0", lw=1.5, label="samples")
    ax2.set(xlabel="distance to the centre line", yticks=[], ylim=(0, 20),
            title=f"energy distance {sl.metrics.energy_distance(x, data):.3f}")
    ax2.legend()
    outside = int(np.sum(np.any((x < window[0]) | (x > window[1]), axis=1)))
    if outside:
        print(f"{outside} of {len(x)} chains ended outside the window: the step is too large for this score")


widget_chains = cached_chains(score_interp, x0[:N_WIDGET], key_widget, BLOCK)
draw_widget = partial(draw_langevin, widget_chains, np.asarray(data_a), centre_line, t_nodes, WINDOW)
draw_widget()
plt.show()

# %%
import ipywidgets as widgets

sl.widgets.interactive_figure(
    draw_widget,
    step_size=widgets.SelectionSlider(options=list(WIDGET_STEP_SIZES), value=STEP_SIZE, description="step a"),
    n_steps=widgets.IntSlider(value=N_STEPS, min=BLOCK, max=WIDGET_MAX_STEPS, step=BLOCK, description="steps"),
    temperature=widgets.SelectionSlider(options=list(WIDGET_TEMPERATURES), value=1.0, description="T"),
)

# %% [markdown]
# *The sliders come alive when the cells above run in a live kernel; the stored notebook shows the default figure
# above them.*
#
# ## Summary
#
# - Exact ISM learns the swiss roll's score with a small MLP; the learned field points across the roll to its
#   centre line. Against the roll's exact score (a posterior mean along the curve, by quadrature) its Fisher
#   divergence is about a third of $\tfrac12\mathbb E|s^*|^2$ (the printed $D_F/C$), and $J + C = D_F$ holds within
#   its standard error.
# - Langevin dynamics needs its noise term: without it (gradient ascent) the chains collapse onto a few stretches of
#   the centre line, and a step size that decays geometrically freezes the chains near where they started, so each
#   arm keeps its share of the start. The energy distance, with its standard error, orders these: data floor <
#   Langevin < decaying sampler < gradient ascent < the start, each more than two standard errors apart (asserted).
#   Langevin is not at the floor: it under-populates the inner third of the roll.
# - Hutchinson's estimator $\mathbb E[\mathbf v^\top A\mathbf v] = \operatorname{tr}A$ turns the trace into one
#   Jacobian-vector product. SSM and SSM-VR are unbiased for ISM (every mean within 4 standard errors). The trace
#   term's variance is $2\|S\|_F^2$ per point for Gaussian projections (measured within 10%) and smaller for
#   Rademacher ones (the printed ratio of standard deviations); on the thin swiss roll, plain SSM is less noisy than
#   SSM-VR because its two terms partly cancel (the printed standard deviations).
# - The SSM-trained score has a higher ISM loss by the printed paired difference, which equals its extra Fisher
#   divergence within their standard errors and is far beyond them; the energy distance of its Langevin samples
#   does not resolve it.
# - The exact trace makes ISM's per-step cost grow like $d\,w(2d + w)$, between linearly and quadratically in $d$
#   (the printed log-log slope); SSM and DSM stay nearly flat.
#
# ## Exercises
#
# 1. Repeat the variance table with `n_projections` = 1, 4, 16. How does the standard deviation scale?
# 2. Set the temperature to 0.3 in the widget. What does the cloud look like, and which density is it sampling?
# 3. Run `sl.benchmark.step_cost_vs_dim((16, 256), width=512)`. How do the ratios change with a wider network?
# 4. Train both models for four times as many steps and print the Fisher-divergence table again. Does the gap
#    between the ISM- and SSM-trained scores shrink?
# 5. Run the Langevin chains of section 3 with the exact score `true_score` in place of the learned one. Is the
#    inner third of the roll still under-populated?
#
# <!-- BEGIN SOLUTION -->
# <details><summary>Solution 1</summary>
#
# The projections are independent, so averaging $m$ of them divides the variance by $m$: the standard deviation
# falls like $1/\sqrt m$, halving from 1 to 4 to 16. `ssm_draws` fixes one projection per point, so call
# `sl.losses.ssm_loss(..., n_projections=m)` for each key yourself. With 16 projections per point, `vmap` over 1500
# draws of the whole batch would hold $1500 \times 16 \times 256 \times 128$ activations of each hidden layer at
# once, about 3 GB in float32 (8 x 10^8 numbers of 4 bytes), so the cell below maps over the draws one at a time (`jax.lax.map`), on the first
# `SOLUTION_BATCH` points of the batch, and prints the standard deviation times
# $\sqrt m$, which stays put (asserted within 15%, about three times the error of a standard deviation from
# `SOLUTION_DRAWS` draws). Each projection costs one JVP, so $m$ projections cost as much as exact ISM in $d = m$
# dimensions: for $d = 2$, exact ISM costs no more than $m = 2$ projections and is exact.
# </details>
#
# <details><summary>Solution 2</summary>
#
# With $T = 0.3$ the noise variance is $2aT$ per step, and the stationary density is $p^{1/T} = p^{3.3}$
# (normalised): where the roll is Gaussian across, its width shrinks by $\sqrt T \approx 0.55$, and low-density
# parts such as the gaps between the arms lose mass. The cell below runs the widget's chains at $T = 1$ and
# $T = 0.3$: the median distance to the centre line shrinks by the printed ratio (asserted within 15% of
# $\sqrt T$), to below the data's (the histogram moves left of the data's), and the share of chains more than
# $2\sigma$ from the centre line, out in the gaps, falls (printed, asserted). Low temperatures trade diversity for
# typicality; notebook 06's baseline multiplies the noise's standard deviation by 0.02 (a temperature of $0.02^2$ in
# this notebook's convention) for the same reason.
# </details>
#
# <details><summary>Solution 3</summary>
#
# Not run here: compiling and timing exact ISM at $d = 256$ through a width-512 network takes longer than the rest
# of this notebook. The cost model says what to look for. Exact ISM costs about $d$ JVPs of $w(2d + w)$ each and SSM
# about one, so once the products dominate a step their ratio grows like $d$ times a fixed fraction, whatever the
# width (the last column of section 5's table). A wider network makes every pass more expensive, so the parts of a
# step that do not grow with $d$ (the optimizer's update aside, launching the computation) weigh less, and the
# products dominate from a smaller $d$ on. Compare the ratio per dimension at $d = 16$ with section 5's at $d$ = 8
# and 32, and at $d = 256$ with its value at $d = 128$; both steps are slower in absolute terms.
# </details>
#
# <details><summary>Solution 4</summary>
#
# Not run here: it trains both models again, four times as long as section 1 and section 4 together. What to look
# for: with one projection per point the SSM gradient is an unbiased but noisier estimate of the ISM gradient, so if
# gradient noise is what makes the SSM-trained score worse, more steps (with the cosine schedule ending at a small
# rate later) should narrow the paired difference in $D_F$; compare it, with its standard error, with the one
# printed in section 4. If it does not narrow, the gap comes from somewhere else, for instance a different optimum
# reached from the same start. Set `STEPS` in the Hyperparameters cell and rerun.
# </details>
#
# <details><summary>Solution 5</summary>
#
# Running `true_score` itself inside 1000 Langevin steps costs a quadrature over the centre line at every step.
# The cell below does what section 6 does for the learned score: it tabulates the exact score once on the same
# $351 \times 351$ grid (its interpolation error is printed) and runs the widget's chains, `N_WIDGET` of the uniform
# start, with both tables, for `N_STEPS` and twice as many steps. With the exact score the inner third is much
# closer to its third (asserted: at least 0.05 more than with the learned score after `N_STEPS` steps, and within
# 0.04 of a third after twice as many), while with the learned score twice the steps leave it short (asserted below
# 0.27). So most of section 3's shortfall comes from the learned score's errors in the inner arm, and a smaller part
# from chains that have not finished spreading along the spiral (the exact score's chains also still over-fill the
# outer third after `N_STEPS` steps, printed and asserted).
# </details>
# <!-- END SOLUTION -->

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
# Solution 1, run: the least noisy variant on the first SOLUTION_BATCH points of the batch, m projections per point.
def ssm_draws_m(score_fn, x, key, n_draws, n_projections, variant):
    """Like ssm_draws with n_projections per point, one draw at a time (lax.map) to keep the memory small."""
    return jax.lax.map(lambda k: sl.losses.ssm_loss(score_fn, x, k, n_projections=n_projections, **variant),
                       jax.random.split(key, n_draws))


stds_m = {m: float(np.std(ssm_draws_m(score_ism, batch[:SOLUTION_BATCH], key_proj, SOLUTION_DRAWS, m,
                                      variants[best_variant]))) for m in SOLUTION_PROJECTIONS}
print(f"solution 1: {best_variant}, {SOLUTION_BATCH} points, {SOLUTION_DRAWS} draws")
for m, std in stds_m.items():
    print(f"  m = {m:2d} projections per point: std {std:.2g}, std x sqrt(m) {std * np.sqrt(m):.2g}")
assert all(abs(std * np.sqrt(m) / stds_m[1] - 1) < 0.15 for m, std in stds_m.items()), "std should fall as 1/sqrt(m)"

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
# Solution 2, run: the widget's chains after N_STEPS steps of size STEP_SIZE, at T = 1 and T = LOW_TEMPERATURE.
median_dist, far_share = {}, {}
print(f"solution 2: {'':8} median distance to the centre line   share beyond 2 sigma")
for name, x in (("data", data_a), ("T = 1", widget_chains(STEP_SIZE, N_STEPS, 1.0)),
                (f"T = {LOW_TEMPERATURE}", widget_chains(STEP_SIZE, N_STEPS, LOW_TEMPERATURE))):
    dist, _ = centre_line_position(x, centre_line, t_nodes)
    median_dist[name], far_share[name] = np.median(dist), np.mean(dist > 2 * sigma_roll)
    print(f"  {name:8} {median_dist[name]:33.3f} {far_share[name]:22.3f}")
low, ratio = f"T = {LOW_TEMPERATURE}", median_dist[f"T = {LOW_TEMPERATURE}"] / median_dist["T = 1"]
print(f"  median distance at T = {LOW_TEMPERATURE} over T = 1: {ratio:.2f}; sqrt(T) = {np.sqrt(LOW_TEMPERATURE):.2f}")
assert abs(ratio / np.sqrt(LOW_TEMPERATURE) - 1) < 0.15, "the width should shrink by about sqrt(T)"
assert median_dist[low] < median_dist["data"] and far_share[low] < far_share["T = 1"]

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
# Solution 5, run: the exact score tabulated on the widget's grid, and the widget's chains with both tables.
exact_table = true_score(table_points, curve_nodes, sigma_roll).reshape(TABLE_SIZE, TABLE_SIZE, 2)
exact_interp = partial(table_score, exact_table, window=WINDOW)
s_exact = true_score(data_a, curve_nodes, sigma_roll)
exact_error = float(jnp.sqrt(jnp.mean((exact_interp(data_a) - s_exact) ** 2) / jnp.mean(s_exact**2)))
print(f"solution 5: relative rms error of the tabulated exact score on the data: {exact_error:.0e}")
exact_chains = cached_chains(exact_interp, x0[:N_WIDGET], key_widget, BLOCK)
inner, outer = {}, {}
print(f"  {'score':8} {'steps':>5}   share on inner / outer third")
for n_steps in (N_STEPS, 2 * N_STEPS):
    for name, chains in (("learned", widget_chains), ("exact", exact_chains)):
        _, t = centre_line_position(chains(STEP_SIZE, n_steps, 1.0), centre_line, t_nodes)
        inner[name, n_steps], outer[name, n_steps] = np.mean(t < t_nodes[0] + third), np.mean(t > t_nodes[-1] - third)
        print(f"  {name:8} {n_steps:5d} {inner[name, n_steps]:16.2f} / {outer[name, n_steps]:.2f}")
assert exact_error < 0.01
assert inner["exact", N_STEPS] > inner["learned", N_STEPS] + 0.05, "the exact score fills the inner third better"
assert abs(inner["exact", 2 * N_STEPS] - 1 / 3) < 0.04 and inner["learned", 2 * N_STEPS] < 0.27
assert outer["exact", N_STEPS] > 0.36, "after N_STEPS steps the exact score's chains still over-fill the outer third"

# %% [markdown]
# ### Coding exercises
#
# Each function below has a docstring and a hint; replace the body between the markers with your code, run the cell,
# then run the check after it. The check (`sl.exercises.check_...`) compares your function with scorelib on score
# functions, dimensions and points you have not seen, and says what is wrong: a wrong sign, a missing factor, a
# dropped term, the input where it is furthest off.
#
# 6. Write the SSM-VR estimator of section 4 point by point, for projections you are given,
#    `ssm_vr_per_point(score_fn, x, v)`: $\mathbf v_n^\top\nabla s_\theta(\mathbf x_n)\,\mathbf v_n +
#    \tfrac12|s_\theta(\mathbf x_n)|^2$ for every point, shape `(n,)`, in any dimension $d$.
# 7. Write Hutchinson's trace estimator with Rademacher probes, `rademacher_trace(score_fn, x, key, n_probes)`: the
#    average of $\mathbf v^\top\nabla s_\theta(\mathbf x_n)\,\mathbf v$ over `n_probes` probes per point, each entry of
#    $\mathbf v$ being $+1$ or $-1$ with probability $\tfrac12$. The check first tries a score whose Jacobian is
#    diagonal, where every Rademacher probe gives the trace exactly (why?), then a dense one.

# %%
def ssm_vr_per_point(score_fn, x, v):
    """v_n . J(x_n) v_n + 0.5 |s(x_n)|^2 for every point: x and the projections v are (n, d); returns (n,)."""
    # Hint: one jax.jvp of score_fn at x with tangent v gives s(x) and every J(x_n) v_n at once (section 4's
    # ssm_inline). Here v is given, there is no mean over the batch, and the norm term is SSM-VR's.
    ### BEGIN SOLUTION
    s, jv = jax.jvp(score_fn, (x,), (v,))
    return jnp.sum(v * jv, axis=1) + 0.5 * jnp.sum(s**2, axis=1)
    ### END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
sl.exercises.check_ssm_vr(ssm_vr_per_point)


# %%
def rademacher_trace(score_fn, x, key, n_probes):
    """Hutchinson's estimate of tr J(x_n) at every point with n_probes Rademacher probes: x (n, d) -> (n,).

    Draw every probe at once, v = jax.random.rademacher(key, (n_probes, *x.shape), x.dtype), so that probe j of
    point n is v[j, n] (the convention of sl.losses.ssm_loss, which lets the check reproduce your draws).
    """
    # Hint: jax.vmap over the probes of lambda u: jax.jvp(score_fn, (x,), (u,))[1] gives J(x_n) v for every probe
    # and point, shape (n_probes, n, d); multiply by v, sum over d, average over the probes. (The dtype matters:
    # jax.jvp wants a tangent of the same dtype as x.)
    ### BEGIN SOLUTION
    v = jax.random.rademacher(key, (n_probes, *x.shape), x.dtype)
    jv = jax.vmap(lambda u: jax.jvp(score_fn, (x,), (u,))[1])(v)
    return jnp.mean(jnp.sum(v * jv, axis=2), axis=0)
    ### END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
sl.exercises.check_hutchinson_rademacher(rademacher_trace)

# %% [markdown]
# ## References
#
# 1. A. Hyvärinen (2005). Estimation of non-normalized statistical models by score matching. *JMLR* 6, 695-709.
#    [jmlr.org/papers/v6/hyvarinen05a](https://jmlr.org/papers/v6/hyvarinen05a.html)
# 2. Y. Song, S. Garg, J. Shi, S. Ermon (2019). Sliced score matching: a scalable approach to density and score
#    estimation. *UAI*. [arXiv:1905.07088](https://arxiv.org/abs/1905.07088)
# 3. M. F. Hutchinson (1989). A stochastic estimator of the trace of the influence matrix for Laplacian smoothing
#    splines. *Communications in Statistics* 18(3), 1059-1076.
#    [doi:10.1080/03610918908812806](https://doi.org/10.1080/03610918908812806)
# 4. G. J. Székely, M. L. Rizzo (2013). Energy statistics: a class of statistics based on distances. *Journal of
#    Statistical Planning and Inference* 143(8), 1249-1272. [doi:10.1016/j.jspi.2013.03.018](https://doi.org/10.1016/j.jspi.2013.03.018)
# 5. M. Welling, Y. W. Teh (2011). Bayesian learning via stochastic gradient Langevin dynamics. *ICML*.
# 6. *Generative Modeling by Estimating Gradients of Data Distribution in JAX*, a notebook formerly in JAX's
#    documentation (`docs/notebooks/score_matching.ipynb`), written for the since-removed `jax.experimental.stax` and
#    `jax.experimental.optimizers`.
# 7. *Score Matching, Toy Datasets, and JAX*, blog post, 31 October 2022.
#    [data4thought.com/score_matching.html](https://data4thought.com/score_matching.html)

# %%
print(f"training time {train_seconds:.1f} s; cost measurement {cost_seconds:.0f} s; "
      f"notebook run time {time.perf_counter() - notebook_start:.0f} s")
