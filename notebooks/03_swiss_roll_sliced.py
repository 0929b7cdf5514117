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
# projection, the step that makes score matching affordable in high dimensions.
#
# In this notebook you will:
#
# - train an MLP on the swiss roll with exact ISM (notebook 02) and draw its score field;
# - see why the noise term of Langevin dynamics matters, against plain gradient ascent, and what goes wrong with a
#   step size that decays too fast;
# - measure sample quality with the energy distance, against a second draw of the data as the floor;
# - derive Hutchinson's trace estimator and sliced score matching (SSM), check its unbiasedness numerically,
#   measure and explain the variance of its four variants, and train with it;
# - time exact ISM, SSM and denoising score matching per training step for data dimensions 2 to 128.

# %%
import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import scorelib as sl

plt.rcParams.update({"figure.dpi": 72, "figure.figsize": (9, 3.6), "axes.grid": True, "grid.alpha": 0.3})
notebook_start = time.perf_counter()

# %% [markdown]
# ## Hyperparameters

# %%
SEED = 0
NOISE = 1.0  # scikit-learn's make_swiss_roll noise, before the division by 10 (as in the seed notebook)
SIZES = (2, 128, 128, 2)  # the seed notebook's MLP, softplus activations
STEPS, BATCH_SIZE = 3000, 256
LR = optax.cosine_decay_schedule(3e-3, STEPS)
WINDOW = (-1.5, 2.0)  # plotting window, both axes

N_SAMPLES = 2000  # Langevin chains, and the size of each data draw compared against them
STEP_SIZE, N_STEPS = 1e-3, 1000  # Langevin step a: a tenth of the roll's squared thickness 0.1^2
N_VARIANCE_DRAWS = 1500  # projection draws per variant, for the unbiasedness check and the variance table
DIMS = (2, 8, 32, 64, 128)  # data dimensions for the cost measurement

key = jax.random.key(SEED)
(key_a, key_b, key_init, key_train, key_start, key_langevin, key_traj, key_seed, key_proj, key_ssm,
 key_widget) = jax.random.split(key, 11)

# %% [markdown]
# ## 1. The data and exact ISM
#
# `sl.data.swiss_roll` builds the roll the way scikit-learn's `make_swiss_roll` does, keeps the two coordinates
# that carry the spiral and divides by 10, like the seed notebook; it is written in JAX so that the training loop can
# draw a fresh batch every step from an explicit key. The seed notebook trained with `jax.experimental.stax` and
# `jax.experimental.optimizers`, both removed from JAX years ago; here the network is `sl.nets` and the optimizer
# optax. The loss is exact ISM, $\mathbb E[\tfrac12|s_\theta|^2 + \operatorname{tr}\nabla s_\theta]$, as in
# notebook 02.

# %%
data_a = sl.data.swiss_roll(key_a, N_SAMPLES, noise=NOISE)
data_b = sl.data.swiss_roll(key_b, N_SAMPLES, noise=NOISE)  # an independent draw: the floor of any distance


def mlp_score(params):
    return lambda x: sl.nets.mlp_apply(params, x)


def roll_sampler(key, n):
    return sl.data.swiss_roll(key, n, noise=NOISE)


def ism_objective(params, batch, key):
    return sl.losses.ism_loss(mlp_score(params), batch)


params0 = sl.nets.mlp_init(key_init, SIZES)
start = time.perf_counter()
params_ism, losses_ism = sl.train.fit(ism_objective, params0, key=key_train, data=roll_sampler, steps=STEPS,
                                      batch_size=BATCH_SIZE, optimizer=optax.adam(LR))
train_seconds = time.perf_counter() - start
score_ism = mlp_score(params_ism)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2)
sl.plotting.plot_loss(ax1, losses_ism)
ax1.set(title="exact ISM loss", ylim=(float(np.percentile(losses_ism, 0.5)) - 2, 5))
ax2.scatter(*np.asarray(data_a).T, s=1, alpha=0.3, color="k")
sl.plotting.plot_score_field(ax2, score_ism, WINDOW, WINDOW, n=25, title="learned score, length log(1+|s|)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Near the roll the field points across it, towards its centre line; between the arms it points to the nearest arm.
# The seed notebook trained for 2000 steps of batch 128 at a constant rate $10^{-3}$; its loss was still falling
# steeply at the end. We take 3000 steps of batch 256 with a cosine-decayed rate, about 3 times the work; the loss
# still creeps down at the end (exercise: train longer and watch the energy distance of section 3).
#
# ## 2. Langevin dynamics and why the noise matters
#
# Gradient ascent on $\log p$, $\mathbf x \leftarrow \mathbf x + a\,s(\mathbf x)$, climbs to the nearest high-density
# ridge and stays there. Langevin dynamics adds noise,
#
# $$ \mathbf x \leftarrow \mathbf x + a\,s(\mathbf x) + \sqrt{2a}\,\mathbf z, \qquad \mathbf z \sim \mathcal N(0, I), $$
#
# and the balance of the two terms is exactly what makes $p$ its stationary density (as $a \to 0$): the drift
# concentrates the points and the noise spreads them with a variance that grows like $2a$ per step, the same rate at
# which the drift removes it where $s = \nabla\log p$. Below, three chains from the seed notebook's starting points,
# every 25th state drawn.

# %%
starts = jnp.array([[-1.5, -1.5], [0.0, 0.0], [1.5, 0.0]])
_, trajectory = sl.samplers.langevin(score_ism, starts, key_traj, step_size=STEP_SIZE, n_steps=N_STEPS,
                                     return_trajectory=True)
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.scatter(*np.asarray(data_a).T, s=1, alpha=0.15, color="k")
sl.plotting.plot_trajectories(ax, trajectory[::25])
ax.set(xlim=WINDOW, ylim=WINDOW, aspect="equal", title=f"Langevin chains, a = {STEP_SIZE}, every 25th step")
plt.show()

# %% [markdown]
# Now 2000 chains from a broad uniform start on the plotting window: Langevin (temperature 1) and gradient ascent
# (temperature 0, no noise), the same steps and keys otherwise.

# %%
x0 = jax.random.uniform(key_start, (N_SAMPLES, 2), minval=WINDOW[0], maxval=WINDOW[1])
samples_langevin = sl.samplers.langevin(score_ism, x0, key_langevin, step_size=STEP_SIZE, n_steps=N_STEPS)
samples_ascent = sl.samplers.langevin(score_ism, x0, key_langevin, step_size=STEP_SIZE, n_steps=N_STEPS,
                                      temperature=0.0)

# %% [markdown]
# The seed notebook's sampler was $\mathbf x \leftarrow \mathbf x + \frac{\varepsilon}{2}s(\mathbf x) +
# \sqrt{\varepsilon}\,T\,\mathbf z$ with $\varepsilon$ starting at $10^{-2}$ and multiplied by 0.9 after each of 15
# steps. The steps sum to $\sum_t \varepsilon_t/2 = 0.005\,(1 - 0.9^{15})/0.1 \approx 0.04$. That is enough to
# approach the roll, because the score is steep (it grows like distance$/0.1^2$ across the roll), but the step and the
# noise die together: after a few steps the chains stop moving, wherever they are. Such a sampler returns a smeared
# copy of the start, pulled towards the roll, not $p$. (Its $T$ also multiplies the standard deviation, so it is the
# square root of the usual temperature.) Here it is, written out:

# %%
def seed_notebook_sampler(score_fn, x, key, eps=1e-2, eps_decay=0.9, num_steps=15, temperature=1.0):
    for k in jax.random.split(key, num_steps):
        x = x + eps / 2 * score_fn(x) + jnp.sqrt(eps) * temperature * jax.random.normal(k, x.shape)
        eps *= eps_decay
    return x


samples_seed = jax.jit(seed_notebook_sampler, static_argnums=0)(score_ism, x0, key_seed)  # 15 steps, unrolled

# %% [markdown]
# ## 3. A number for sample quality: the energy distance
#
# The energy distance between samples $X$ and $Y$ is $2\,\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'|$.
# It is zero exactly when the two distributions agree and needs no bandwidth (`sl.metrics.energy_distance`). Two
# independent draws of the data give its floor for samples of this size.

# %%
# NBVAL_CHECK_OUTPUT
quality = {
    "second draw of the data (floor)": sl.metrics.energy_distance(data_b, data_a),
    "Langevin, exact-ISM score": sl.metrics.energy_distance(samples_langevin, data_a),
    "seed notebook's decaying sampler": sl.metrics.energy_distance(samples_seed, data_a),
    "gradient ascent, exact-ISM score": sl.metrics.energy_distance(samples_ascent, data_a),
    "the uniform start": sl.metrics.energy_distance(x0, data_a),
}
for name, value in quality.items():
    print(f"{name:34s} {value:.4f}")
values = list(quality.values())
assert values[0] < values[1] < values[2] < values[3] < values[4]

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.7))
for ax, x, title in ((axes[0], samples_langevin, "Langevin"), (axes[1], samples_seed, "seed notebook's sampler"),
                     (axes[2], samples_ascent, "gradient ascent")):
    ax.scatter(*np.asarray(data_a).T, s=1, alpha=0.15, color="k")
    ax.scatter(*np.asarray(x).T, s=2, alpha=0.5, color="C3")
    ax.set(xlim=WINDOW, ylim=WINDOW, aspect="equal", title=title, xlabel="$x_1$", ylabel="$x_2$")
plt.tight_layout()
plt.show()

# %% [markdown]
# Gradient ascent piles the points onto thin ridges, the maxima of the learned density across the roll, and leaves
# the roll's width empty; Langevin fills the width. The seed's sampler leaves a thick, smeared band: its chains froze
# before the drift finished pulling them in. Langevin is not at the floor either: the inner coil of the spiral, where
# the arms are close and the learned score is least accurate, is under-populated, and moving mass along the spiral
# is slow diffusion.
#
# ## 4. Sliced score matching
#
# Exact ISM needs $\operatorname{tr}\nabla s_\theta = \sum_i \partial_i s_i$: $d$ forward-mode products per batch.
# **Hutchinson's estimator** replaces it by one: for a random vector $\mathbf v$ with $\mathbb E[\mathbf v\mathbf
# v^\top] = I$,
#
# $$ \mathbb E_{\mathbf v}[\mathbf v^\top A\,\mathbf v] = \mathbb E\Big[\sum_{ij} v_i A_{ij} v_j\Big]
#    = \sum_{ij} A_{ij}\,\mathbb E[v_i v_j] = \sum_i A_{ii} = \operatorname{tr}A, $$
#
# and $A\mathbf v = \nabla s_\theta\,\mathbf v$ is a single Jacobian-vector product (`jax.jvp`). (Note the condition
# is on the whole covariance: unit variance of each coordinate is not enough; they must also be uncorrelated.) This
# gives **SSM-VR**, $\mathbb E[\mathbf v^\top\nabla s_\theta\,\mathbf v + \tfrac12|s_\theta|^2]$. Song et al. (2019)
# derived sliced score matching by projecting the score itself onto $\mathbf v$, which gives **SSM**,
# $\mathbb E[\mathbf v^\top\nabla s_\theta\,\mathbf v + \tfrac12(\mathbf v^\top s_\theta)^2]$; since $\mathbb
# E[(\mathbf v^\top s)^2] = |s|^2$ both have the same expectation, exact ISM. Check it on the trained network and one
# batch, averaging 1500 independent projection draws of each variant:

# %%
batch = data_a[:BATCH_SIZE]
ism_value = float(sl.losses.ism_loss(score_ism, batch))


def ssm_draws(key, n_draws, **kwargs):
    """The one-projection loss on the fixed batch for n_draws independent projection keys."""
    return jax.vmap(lambda k: sl.losses.ssm_loss(score_ism, batch, k, n_projections=1, **kwargs))(
        jax.random.split(key, n_draws))


variants = {
    "SSM, Gaussian v": dict(variance_reduced=False, projection="gaussian"),
    "SSM, Rademacher v": dict(variance_reduced=False, projection="rademacher"),
    "SSM-VR, Gaussian v": dict(variance_reduced=True, projection="gaussian"),
    "SSM-VR, Rademacher v": dict(variance_reduced=True, projection="rademacher"),
}
draws = {name: np.asarray(ssm_draws(key_proj, N_VARIANCE_DRAWS, **kw)) for name, kw in variants.items()}

# %%
# NBVAL_CHECK_OUTPUT
print(f"exact ISM on the batch: {ism_value:.3f}")
for name, d in draws.items():
    se = d.std() / np.sqrt(len(d))
    print(f"{name:22s} mean of {len(d)} projections {d.mean():8.3f}  (standard error {se:.3f})")
    assert abs(d.mean() - ism_value) < 4 * se

# %% [markdown]
# **Variance.** Each estimate uses one $\mathbf v$ per point of the batch. The spread over projection draws depends
# on the variant, and can be predicted. Write $S = \tfrac12(\nabla s + \nabla s^\top)$ (only the symmetric part
# survives in $\mathbf v^\top A\mathbf v$). For a Gaussian $\mathbf v$, $\operatorname{Var}(\mathbf v^\top A\mathbf v)
# = 2\|S\|_F^2$; for a Rademacher $\mathbf v$ (entries $\pm1$) the diagonal contributes nothing, since
# $v_i^2 = 1$ exactly, and the variance is $2(\|S\|_F^2 - \sum_i S_{ii}^2)$. SSM adds the randomness of
# $\tfrac12(\mathbf v^\top s)^2$ on top. The batch mean divides each point's variance by the batch size squared.

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
lines = ["variant                 std over projections   predicted (VR only)"]
for name, d in draws.items():
    pred = predicted_std(score_ism, batch, "Rademacher" in name) if "VR" in name else float("nan")
    lines.append(f"{name:22s} {d.std():14.3f} {pred:20.3f}")
print("\n".join(lines))
stds = {name: d.std() for name, d in draws.items()}
for name in ("SSM-VR, Gaussian v", "SSM-VR, Rademacher v"):
    assert abs(stds[name] / predicted_std(score_ism, batch, "Rademacher" in name) - 1) < 0.1  # relative standard error of a std from 1500 draws: 1.8%
assert stds["SSM-VR, Rademacher v"] < stds["SSM-VR, Gaussian v"] and stds["SSM, Rademacher v"] < stds["SSM, Gaussian v"]
best_variant = min(stds, key=stds.get)
print(f"least noisy: {best_variant}")

# %% [markdown]
# The predictions for SSM-VR match the measured spread. Rademacher projections halve it: in two dimensions the
# diagonal of $S$ carries much of $\|S\|_F^2$ (in high dimensions the off-diagonal terms dominate and the gain
# shrinks). The surprise is that the *variance-reduced* loss is noisier than plain SSM here. The swiss roll is thin:
# near the data $\nabla s \approx -\mathbf n\mathbf n^\top/\sigma^2$ and $s \approx s_n\mathbf n$ for the normal
# $\mathbf n$ across the roll, so SSM's two terms are $(\mathbf v\cdot\mathbf n)^2(\tfrac12 s_n^2 - 1/\sigma^2)$:
# both fluctuate with the same $(\mathbf v\cdot\mathbf n)^2$, with opposite signs, and largely cancel. SSM-VR
# replaces the second by its mean and loses the cancellation. "Variance-reduced" is a statement about the norm term
# alone, not a guarantee for the sum; measure before choosing.
#
# Now train the same network from the same initialisation with the least noisy variant, one projection per point,
# and compare the samples with the same energy distance.

# %%
def ssm_objective(params, batch, key):
    return sl.losses.ssm_loss(mlp_score(params), batch, key, n_projections=1, **variants[best_variant])


start = time.perf_counter()
params_ssm, losses_ssm = sl.train.fit(ssm_objective, params0, key=key_train, data=roll_sampler, steps=STEPS,
                                      batch_size=BATCH_SIZE, optimizer=optax.adam(LR))
train_seconds += time.perf_counter() - start
score_ssm = mlp_score(params_ssm)
samples_ssm = sl.samplers.langevin(score_ssm, x0, key_langevin, step_size=STEP_SIZE, n_steps=N_STEPS)

# %%
# NBVAL_CHECK_OUTPUT
ed_ssm = sl.metrics.energy_distance(samples_ssm, data_a)
fresh = sl.data.swiss_roll(jax.random.key(123), 20_000, noise=NOISE)
loss_ism_fresh, loss_ssm_fresh = (float(sl.losses.ism_loss(f, fresh)) for f in (score_ism, score_ssm))
print(f"exact ISM loss on 20000 fresh points: ISM-trained {loss_ism_fresh:.2f}, SSM-trained {loss_ssm_fresh:.2f}")
print(f"energy distance of Langevin samples: ISM-trained {quality['Langevin, exact-ISM score']:.4f}, "
      f"SSM-trained {ed_ssm:.4f} (floor {quality['second draw of the data (floor)']:.4f})")
assert ed_ssm < 2 * quality["Langevin, exact-ISM score"] and ed_ssm < quality["gradient ascent, exact-ISM score"]

# %%
fig, (ax1, ax2) = plt.subplots(1, 2)
sl.plotting.plot_loss(ax1, losses_ssm)
ax1.set(title=f"loss: {best_variant}", ylim=(float(np.percentile(losses_ssm, 0.5)) - 2, 5))
ax2.scatter(*np.asarray(data_a).T, s=1, alpha=0.15, color="k")
ax2.scatter(*np.asarray(samples_ssm).T, s=2, alpha=0.5, color="C3")
ax2.set(xlim=WINDOW, ylim=WINDOW, aspect="equal", title="Langevin samples, SSM-trained score")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Why slicing exists: cost against dimension
#
# `sl.benchmark.step_cost_vs_dim` times one compiled Adam step of each loss for an MLP $d \to 128 \to 128 \to d$ and
# a batch of 128 random points, for each $d$. Exact ISM does $d$ Jacobian-vector products, SSM one, DSM none (one
# forward pass at a noisy point). These are real timings on the machine that ran this notebook, so the numbers vary
# from run to run; the assertion is on the ratio.

# %%
start = time.perf_counter()
costs = sl.benchmark.step_cost_vs_dim(DIMS, n_steps=4, repeats=3)
cost_seconds = time.perf_counter() - start
ratios = np.array(costs["ism"]["step_seconds"]) / np.array(costs["ssm"]["step_seconds"])
print("    d   ISM ms/step   SSM ms/step   DSM ms/step   ISM / SSM")
for i, d in enumerate(DIMS):
    print(f"{d:5d} {1e3 * costs['ism']['step_seconds'][i]:13.2f} {1e3 * costs['ssm']['step_seconds'][i]:13.2f} "
          f"{1e3 * costs['dsm']['step_seconds'][i]:13.2f} {ratios[i]:11.1f}")
print(f"measured in {cost_seconds:.0f} s, of which compilation {sum(sum(c['compile_seconds']) for c in costs.values()):.0f} s")
assert ratios[DIMS.index(64)] >= 10, "exact ISM should cost at least 10x SSM per step at d = 64"

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.6))
for name, marker in (("ism", "o"), ("ssm", "s"), ("dsm", "^")):
    ax.loglog(DIMS, 1e3 * np.array(costs[name]["step_seconds"]), marker + "-", label=name.upper())
ax.loglog(DIMS, 1e3 * costs["ism"]["step_seconds"][-1] * np.array(DIMS) / DIMS[-1], "k:", label="slope 1")
ax.set(xlabel="data dimension d", ylabel="ms per training step", title="per-step cost, this CPU")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Exact ISM grows linearly in $d$ once $d$ products dominate (the dotted line has slope 1); SSM and DSM stay nearly
# flat, growing only through the first and last layers of the network. At $d = 64$, an 8x8 image, exact ISM costs
# tens of SSM steps; for a 32x32 colour image, $d = 3072$, it would be thousands. Notebook 06 works with $d = 64$.
#
# ## 6. Interactive: step size, steps and temperature
#
# Langevin chains (500 of the uniform start) with the ISM-trained score. Temperature $T$ scales the noise variance:
# $T = 0$ is gradient ascent, $T < 1$ samples a sharpened density $p^{1/T}$, $T > 1$ a flattened one. Steps come in
# blocks of 100 compiled once; results are cached, so a setting seen before redraws at once.

# %%
x0_widget = x0[:500]
BLOCK = 100


@lru_cache(maxsize=512)
def widget_samples(step_size, n_steps, temperature):
    x = x0_widget
    for i in range(n_steps // BLOCK):
        x = sl.samplers.langevin(score_ism, x, jax.random.fold_in(key_widget, i), step_size=step_size, n_steps=BLOCK,
                                 temperature=temperature)
    return np.asarray(x)


def draw_langevin(step_size=STEP_SIZE, n_steps=N_STEPS, temperature=1.0):
    x = widget_samples(step_size, n_steps, temperature)
    finite = np.all(np.isfinite(x), axis=1)
    distance = sl.metrics.energy_distance(x[finite], data_a) if finite.any() else float("nan")
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    ax.scatter(*np.asarray(data_a).T, s=1, alpha=0.15, color="k")
    ax.scatter(*x[finite].T, s=3, alpha=0.6, color="C3")
    ax.set(xlim=WINDOW, ylim=WINDOW, aspect="equal",
           title=f"a = {step_size:.0e}, {n_steps} steps, T = {temperature}: energy distance {distance:.4f}")
    ax.title.set_fontsize(9)
    if not finite.all():
        print(f"{(~finite).sum()} chains diverged: the step is too large")


draw_langevin()
plt.show()

# %%
import ipywidgets as widgets

sl.widgets.interactive_figure(
    draw_langevin,
    step_size=widgets.SelectionSlider(options=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2], value=STEP_SIZE, description="step a"),
    n_steps=widgets.IntSlider(value=N_STEPS, min=BLOCK, max=2000, step=BLOCK, description="steps"),
    temperature=widgets.SelectionSlider(options=[0.0, 0.1, 0.3, 0.5, 1.0, 2.0], value=1.0, description="T"),
)

# %% [markdown]
# ## Summary
#
# - Exact ISM learns the swiss roll's score with a small MLP; the learned field points across the roll to its
#   centre line.
# - Langevin dynamics needs its noise term: without it (gradient ascent) the points collapse onto ridges, and a step
#   size that decays geometrically freezes the chains before they mix. The energy distance orders these:
#   data floor < Langevin < decaying sampler < gradient ascent < the start.
# - Hutchinson's estimator $\mathbb E[\mathbf v^\top A\mathbf v] = \operatorname{tr}A$ turns the trace into one
#   Jacobian-vector product. SSM and SSM-VR are unbiased for ISM. The trace term's variance is $2\|S\|_F^2$ per point
#   for Gaussian projections and smaller for Rademacher ones; on the thin swiss roll, plain SSM is less noisy than
#   SSM-VR because its two terms cancel.
# - The exact trace makes ISM's per-step cost grow linearly with $d$; SSM and DSM do not.
#
# ## Exercises
#
# 1. Repeat the variance table with `n_projections` = 1, 4, 16. How does the standard deviation scale?
# 2. Set the temperature to 0.3 in the widget. What does the cloud look like, and which density is it sampling?
# 3. Run `sl.benchmark.step_cost_vs_dim((16, 256), width=512)`. How do the ratios change with a wider network?
#
# <details><summary>Solution 1</summary>
#
# The projections are independent, so averaging $m$ of them divides the variance by $m$: the standard deviation
# falls like $1/\sqrt m$ (halving from 1 to 4 to 16). In `ssm_draws`, pass `n_projections=m` inside the lambda. Each
# projection costs one JVP, so $m$ projections cost as much as exact ISM in $d = m$ dimensions: for $d = 2$ exact ISM
# is cheaper than any $m \geq 2$.
# </details>
#
# <details><summary>Solution 2</summary>
#
# With $T = 0.3$ the noise variance is $2aT$ per step, and the stationary density is $p^{1/T} = p^{3.3}$
# (normalised): the roll becomes thinner (its width shrinks by $\sqrt T \approx 0.55$ where it is Gaussian across),
# and low-density parts such as the centre lose mass. Low temperatures trade diversity for typicality; notebook 06's
# baseline uses $T = 0.02$ for the same reason.
# </details>
#
# <details><summary>Solution 3</summary>
#
# Exact ISM's cost is about $d$ times that of a forward-and-backward pass; SSM's about 2 passes. The ratio at
# fixed $d$ therefore depends little on the width, roughly $d/2$ once the products dominate the step. With a wider
# network both become slower in absolute terms, and at small $d$ fixed overheads (the optimizer, launching the
# computation) matter less, so the measured ratio moves closer to that estimate.
# </details>
#
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

# %%
print(f"training time {train_seconds:.1f} s; cost measurement {cost_seconds:.0f} s; "
      f"notebook run time {time.perf_counter() - notebook_start:.0f} s")
