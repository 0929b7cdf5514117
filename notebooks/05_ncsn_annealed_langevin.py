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
# # 05 · Noise-conditional score networks and annealed Langevin dynamics
#
# Notebook 01 showed that a learned score can be accurate where the data are and still get the weights of the modes
# wrong. Notebook 04 showed that denoising at one noise level trades a biased, blurred target (large $\sigma$) for a
# noisy, spiky one (small $\sigma$). Song & Ermon (2019) resolved both at once: learn the score at *many* noise levels
# with one network, and sample by walking down the levels.
#
# In this notebook you will:
#
# - see plain Langevin dynamics get the weights of two separated modes wrong even with the exact score, and annealed
#   Langevin get them right (the NCSN paper's experiment);
# - write down the noise-conditional score network $s_\theta(\mathbf x, \sigma)$, the multi-level DSM loss with
#   weights $\lambda(\sigma) = \sigma^2$, and the annealed Langevin algorithm, and check a written-out sampler against
#   `scorelib`;
# - train on a 1D mixture, compare learned and true perturbed scores level by level, and sample;
# - repeat the paper's 2D experiment with a learned network;
# - watch the learned scores form during training, and try the sampler's settings on sliders.

# %%
import time
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from IPython.display import Image

import scorelib as sl

plt.rcParams.update({"figure.dpi": 72, "figure.figsize": (9, 3.4), "axes.grid": True, "grid.alpha": 0.3})
notebook_start = time.perf_counter()

# %% [markdown]
# ## Hyperparameters

# %%
SEED = 0
# The NCSN paper's toy experiment (Song & Ermon 2019, section 3.2.2)
N_PARTICLES_2D = 1280  # started uniformly on [-8, 8]^2
SIGMAS_2D = np.geomspace(20.0, 1.0, 10)  # L = 10 levels, geometric
EPS_2D, STEPS_EACH_2D = 0.1, 100  # step at the smallest level, Langevin steps per level

# The seed note's 1D mixture and noise schedule
SIGMA_MAX_1D, SIGMA_MIN_1D, N_LEVELS_1D = 2.0, 0.5, 16
EPS_1D, STEPS_EACH_1D = 0.05, 100
N_PARTICLES_1D = 2000  # started uniformly on [-8, 8]

N_DATA = 10_000  # training set size for both learned models
HIDDEN = (128, 128)  # noise-conditional MLP, softplus
STEPS, BATCH_SIZE = 4000, 256
LR = optax.cosine_decay_schedule(3e-3, STEPS)
SNAPSHOT_EVERY = 250  # for the animation

key = jax.random.key(SEED)
(key_start2, key_plain2, key_anneal2, key_data1, key_init1, key_train1, key_eval, key_start1, key_anneal1, key_data2,
 key_init2, key_train2, key_widget) = jax.random.split(key, 13)

# %% [markdown]
# ## 1. One noise level is not enough: exact scores on two distant modes
#
# Take $p = 0.8\,\mathcal N((5,5), I) + 0.2\,\mathcal N((-5,-5), I)$ and start 1280 chains uniformly on
# $[-8, 8]^2$. First plain Langevin dynamics with the *exact* score of $p$ and step $a = 0.1$ for 1000 steps. Then
# annealed Langevin: ten levels $\sigma_i$ from 20 down to 1, at each level 100 steps driven by the exact score of
# the perturbed density $p_{\sigma_i} = p * \mathcal N(0, \sigma_i^2 I)$ (`GaussianMixture.perturbed_score`), with
# step $a_i = \varepsilon\,\sigma_i^2/\sigma_L^2$. Both use the same total number of steps.

# %%
paper_mixture = sl.data.GaussianMixture(means=[[5.0, 5.0], [-5.0, -5.0]], covs=[np.eye(2), np.eye(2)],
                                        weights=[0.8, 0.2])
x0_2d = jax.random.uniform(key_start2, (N_PARTICLES_2D, 2), minval=-8.0, maxval=8.0)
n_total_2d = len(SIGMAS_2D) * STEPS_EACH_2D
plain_exact = sl.samplers.langevin(paper_mixture.score, x0_2d, key_plain2, step_size=EPS_2D, n_steps=n_total_2d)
annealed_exact = sl.samplers.annealed_langevin(paper_mixture.perturbed_score, x0_2d, key_anneal2, sigmas=SIGMAS_2D,
                                               eps=EPS_2D, n_steps_each=STEPS_EACH_2D)


def small_mode_share(x):
    """Fraction of points nearer the small mode (x_1 < 0 separates the two modes in both examples)."""
    return float(np.mean(np.asarray(x)[:, 0] < 0))


binomial_se_2d = np.sqrt(0.2 * 0.8 / N_PARTICLES_2D)

# %%
# NBVAL_CHECK_OUTPUT
share_plain_exact, share_annealed_exact = small_mode_share(plain_exact), small_mode_share(annealed_exact)
print(f"share of the small mode (true 0.2): plain Langevin {share_plain_exact:.3f}, "
      f"annealed Langevin {share_annealed_exact:.3f} (binomial standard error {binomial_se_2d:.3f})")
print(f"share of the start in the small mode's half-plane: {small_mode_share(x0_2d):.3f}")
assert abs(share_annealed_exact - 0.2) < 0.03  # 2.7 standard errors
assert abs(share_plain_exact - 0.2) > 0.2

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, x, title in ((axes[0], x0_2d, "start: uniform"), (axes[1], plain_exact, "plain Langevin, exact score"),
                     (axes[2], annealed_exact, "annealed Langevin, exact scores")):
    ax.scatter(*np.asarray(x).T, s=2, alpha=0.4)
    ax.set(xlim=(-10, 10), ylim=(-10, 10), aspect="equal", title=title, xlabel="$x_1$", ylabel="$x_2$")
plt.tight_layout()
plt.show()

# %% [markdown]
# Plain Langevin keeps every chain in the basin where it started: roughly half start nearer each mode, so each mode
# ends up with about half of the samples. The chains *would* eventually cross, but the gap between the modes has a
# density of about $e^{-25}$ relative to the modes, so the expected waiting time is astronomically long. The score
# itself carries no information about relative weights far from the gap: near each mode it looks like the score of
# that Gaussian alone.
#
# At $\sigma_1 = 20$ the two modes have merged into one broad bump, and every chain is in it. As $\sigma$ decreases
# the bump splits, and at the level where it splits the gap is still shallow, so the chains cross freely and settle
# in proportion 0.8 : 0.2. Later levels only sharpen each mode.
#
# ## 2. The model, the loss and the sampler
#
# **Noise levels.** A geometric sequence $\sigma_1 > \sigma_2 > \dots > \sigma_L$ with constant ratio
# $\sigma_{i+1}/\sigma_i$. The largest should be comparable to the largest distance between data points (so that
# the first level merges all modes), the smallest small enough that $p_{\sigma_L} \approx p$.
#
# **Network.** One network $s_\theta(\mathbf x, \sigma)$ for all levels. `sl.nets.ncsn_apply` feeds it
# $\mathbf x/\sqrt{1 + \sigma^2}$ with Fourier features of $\log\sigma$ and divides the output by $\sigma$, because the
# perturbed score has size about $1/\sigma$ near the data (Song & Ermon 2020).
#
# **Loss.** DSM at every level (notebook 04), weighted:
#
# $$ L(\theta) = \frac{1}{2L}\sum_{i=1}^L \lambda(\sigma_i)\,\mathbb E_{\mathbf x, \mathbf z}
#    \big|s_\theta(\mathbf x + \sigma_i\mathbf z, \sigma_i) + \mathbf z/\sigma_i\big|^2, \qquad \lambda(\sigma) = \sigma^2. $$
#
# Why $\sigma^2$: the regression target $-\mathbf z/\sigma$ has $\mathbb E|\mathbf z/\sigma|^2 = d/\sigma^2$, so
# without weights the small levels would dominate the loss and its noise (notebook 04, section 5 measured the
# $1/\sigma^2$ growth). With $\lambda = \sigma^2$ each term becomes $|\sigma s_\theta + \mathbf z|^2$, of order $d$ at
# every level. (The seed note writes $\|s_\theta\|^2 \propto 1/\sigma$; it is $\|s_\theta\| \propto 1/\sigma$, and the
# square goes like $1/\sigma^2$, which is what makes $\sigma^2$ the right weight.) `sl.losses.ncsn_loss` draws one
# level per data point, an unbiased estimate of this average.
#
# **Sampler.** For $i = 1, \dots, L$, with $a_i = \varepsilon\,\sigma_i^2/\sigma_L^2$, run $K$ steps of
# $\mathbf x \leftarrow \mathbf x + a_i\,s_\theta(\mathbf x, \sigma_i) + \sqrt{2a_i}\,\mathbf z$, each level starting
# where the previous one ended. The step shrinks with $\sigma_i^2$ because the perturbed density's length scale
# shrinks with $\sigma_i$. Written out, with the level count and the steps per level as ordinary (traced) numbers so
# that one compiled function serves every setting of the widget at the end:

# %%
@partial(jax.jit, static_argnames="score_fn")
def annealed_langevin_inline(score_fn, x0, key, sigma_max, sigma_min, n_levels, eps, n_steps_each):
    n = x0.shape[0]

    def level(i, x):
        t = jnp.where(n_levels > 1, i / jnp.maximum(n_levels - 1, 1), 1.0)  # one level means just sigma_min
        sigma = sigma_max * (sigma_min / sigma_max) ** t
        a = eps * sigma**2 / sigma_min**2
        level_key = jax.random.fold_in(key, i)

        def step(j, x):
            z = jax.random.normal(jax.random.fold_in(level_key, j), x.shape)
            return x + a * score_fn(x, jnp.full((n,), sigma)) + jnp.sqrt(2 * a) * z

        return jax.lax.fori_loop(0, n_steps_each, step, x)

    return jax.lax.fori_loop(0, n_levels, level, x0)


def geometric_sigmas(sigma_max, sigma_min, n_levels):
    return sigma_max * (sigma_min / sigma_max) ** (jnp.arange(n_levels) / (n_levels - 1))


check_x = annealed_langevin_inline(paper_mixture.perturbed_score, x0_2d[:64], key_anneal2, 20.0, 1.0, 10, EPS_2D, 20)
check_ref = sl.samplers.annealed_langevin(paper_mixture.perturbed_score, x0_2d[:64], key_anneal2,
                                          sigmas=geometric_sigmas(20.0, 1.0, 10), eps=EPS_2D, n_steps_each=20)
np.testing.assert_allclose(check_x, check_ref, atol=1e-3)

# %%
# NBVAL_CHECK_OUTPUT
print(f"written-out sampler vs scorelib, 64 chains x 200 steps: max difference "
      f"{float(jnp.max(jnp.abs(check_x - check_ref))):.1e}")
sigmas_1d = np.asarray(geometric_sigmas(SIGMA_MAX_1D, SIGMA_MIN_1D, N_LEVELS_1D))
z_check = jax.random.normal(key_eval, (100_000, 1))
weighted = [float(jnp.mean(jnp.sum((z_check / s) ** 2, axis=1))) * s**2 for s in sigmas_1d[[0, -1]]]
print(f"sigma^2 E|z/sigma|^2 at sigma = {sigmas_1d[0]:.1f} and {sigmas_1d[-1]:.1f}: {weighted[0]:.3f}, "
      f"{weighted[1]:.3f} (d = 1 at every level)")

# %% [markdown]
# ## 3. Training on a 1D mixture
#
# The seed note's data, $0.1\,\mathcal N(-3, 1) + 0.9\,\mathcal N(3, 1)$, and its schedule: 16 levels from
# $\sigma_1 = 2$ to $\sigma_L = 0.5$. (At $\sigma_1 = 2$ the perturbed modes, each of standard deviation
# $\sqrt 5 \approx 2.2$, already overlap; exercise 1 follows the rule of thumb of Song & Ermon 2020 instead.) The
# training set is a fixed sample of 10 000 points.

# %%
mixture_1d = sl.data.GaussianMixture(means=[[-3.0], [3.0]], covs=[[[1.0]], [[1.0]]], weights=[0.1, 0.9])
data_1d = mixture_1d.sample(key_data1, N_DATA)


def ncsn_objective(sigmas):
    def objective(params, batch, key):
        return sl.losses.ncsn_loss(lambda x, s: sl.nets.ncsn_apply(params, x, s), batch, key, sigmas)

    return objective


start = time.perf_counter()
params_1d, losses_1d, snapshots_1d = sl.train.fit(
    ncsn_objective(sigmas_1d), sl.nets.ncsn_init(key_init1, 1, HIDDEN), key=key_train1, data=data_1d, steps=STEPS,
    batch_size=BATCH_SIZE, optimizer=optax.adam(LR), snapshot_every=SNAPSHOT_EVERY)
train_seconds = time.perf_counter() - start


def learned_1d(x, sigma):
    return sl.nets.ncsn_apply(params_1d, x, sigma)


# %% [markdown]
# At each level, the Fisher divergence between the learned and the true perturbed score, under the perturbed
# density, relative to that of the zero field:

# %%
def level_errors(score_fn, mixture, sigmas, n=5000):
    rows = []
    for i, sigma in enumerate(sigmas):
        p_sigma = mixture.perturbed(float(sigma))
        x = p_sigma.sample(jax.random.fold_in(key_eval, i), n)
        scale = 0.5 * float(jnp.mean(jnp.sum(p_sigma.score(x) ** 2, axis=1)))
        fn = lambda x, s=float(sigma): score_fn(x, jnp.full((x.shape[0],), s))  # noqa: E731
        rows.append(sl.metrics.fisher_divergence(fn, p_sigma.score, x) / scale)
    return np.array(rows)


errors_1d = level_errors(learned_1d, mixture_1d, sigmas_1d)

# %%
# NBVAL_CHECK_OUTPUT
print("level   sigma   relative Fisher divergence")
for i in range(0, N_LEVELS_1D, 3):
    print(f"{i + 1:5d} {sigmas_1d[i]:7.3f} {errors_1d[i]:12.4f}")
print(f"largest over all {N_LEVELS_1D} levels: {errors_1d.max():.4f}; mean final loss {np.mean(losses_1d[-500:]):.3f}")
assert errors_1d.max() < 0.05

# %%
grid_1d = np.linspace(-8, 8, 401, dtype=np.float32)[:, None]
show_levels = [0, 5, 10, 15]
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 3.4))
for c, i in enumerate(show_levels):
    s = float(sigmas_1d[i])
    ax1.plot(grid_1d, mixture_1d.perturbed(s).score(grid_1d), color=f"C{c}", lw=3, alpha=0.3)
    ax1.plot(grid_1d, learned_1d(grid_1d, jnp.full((401,), s)), color=f"C{c}", lw=1.2, label=f"sigma = {s:.2f}")
ax1.set(xlabel="$x$", ylabel="score", title="learned (thin) vs true (thick) perturbed scores", ylim=(-6, 6))
ax1.legend(fontsize=8)
pdf_learned = sl.metrics.pdf_from_score_1d(grid_1d[:, 0], learned_1d(grid_1d, jnp.full((401,), SIGMA_MIN_1D))[:, 0])
pdf_true = np.exp(np.asarray(mixture_1d.perturbed(SIGMA_MIN_1D).log_prob(grid_1d)))
ax2.plot(grid_1d, pdf_true, "k", lw=3, alpha=0.3, label=r"true $p_{\sigma_L}$")
ax2.plot(grid_1d, pdf_learned, label="from the learned score")
ax2.set(xlabel="$x$", ylabel="density", title=f"pdf at the smallest level, sigma = {SIGMA_MIN_1D}")
ax2.legend(fontsize=8)
sl.plotting.plot_loss(ax3, losses_1d)
ax3.set(title="loss (weighted, all levels)")
plt.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
dx = float(grid_1d[1, 0] - grid_1d[0, 0])
l1_pdf = float(np.sum(np.abs(pdf_learned - pdf_true)) * dx)
mass_small = float(np.sum(pdf_learned[grid_1d[:, 0] < 0]) * dx)
print(f"pdf from the learned score at sigma_L: L1 distance {l1_pdf:.3f}, mass left of 0 {mass_small:.3f} (true 0.1)")
assert l1_pdf < 0.1 and abs(mass_small - 0.1) < 0.03

# %% [markdown]
# Unlike notebook 01, the pdf recovered from the smallest level has the right mode weights: the network learned the
# score on the whole line, because the larger levels fill the gap between the modes with training points.
#
# ## 4. Sampling the 1D model
#
# 2000 chains start uniformly on $[-8, 8]$ and run the annealed sampler, 100 steps at each of the 16 levels with
# $\varepsilon = 0.05$. For comparison, plain Langevin with the smallest-level network $s_\theta(\cdot, \sigma_L)$ and
# step $\varepsilon$ for the same 1600 steps.

# %%
x0_1d = jax.random.uniform(key_start1, (N_PARTICLES_1D, 1), minval=-8.0, maxval=8.0)
samples_1d, traj_1d = sl.samplers.annealed_langevin(learned_1d, x0_1d, key_anneal1, sigmas=sigmas_1d, eps=EPS_1D,
                                                    n_steps_each=STEPS_EACH_1D, return_trajectory=True)
n_total_1d = N_LEVELS_1D * STEPS_EACH_1D
plain_1d, plain_traj_1d = sl.samplers.langevin(lambda x: learned_1d(x, jnp.full((x.shape[0],), SIGMA_MIN_1D)), x0_1d,
                                               key_anneal1, step_size=EPS_1D, n_steps=n_total_1d,
                                               return_trajectory=True)
binomial_se_1d = np.sqrt(0.1 * 0.9 / N_PARTICLES_1D)

# %%
# NBVAL_CHECK_OUTPUT
share_1d, share_plain_1d = small_mode_share(samples_1d), small_mode_share(plain_1d)
share_plain_mid, share_mid = (small_mode_share(t[n_total_1d // 4]) for t in (plain_traj_1d, traj_1d))
print(f"small-mode share (true 0.1) after {n_total_1d} steps: annealed {share_1d:.3f}, plain Langevin "
      f"{share_plain_1d:.3f}; binomial standard error {binomial_se_1d:.3f}")
print(f"after {n_total_1d // 4} steps: annealed {share_mid:.3f}, plain {share_plain_mid:.3f}")
print(f"annealed samples: mean {float(samples_1d.mean()):.3f}, std {float(samples_1d.std()):.3f}; "
      f"p_sigma_L has mean {0.9 * 3 - 0.1 * 3:.3f}, std {np.sqrt(1 + SIGMA_MIN_1D**2 + 0.36 * 9):.3f}")
assert abs(share_1d - 0.1) < 0.03
assert abs(share_plain_mid - 0.1) > abs(share_1d - 0.1)

# %%
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(12, 3.4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
steps_axis = np.arange(n_total_1d + 1)
ax1.plot(steps_axis, np.asarray(traj_1d[:, :40, 0]), lw=0.5, alpha=0.7)
for i in range(1, N_LEVELS_1D):
    ax1.axvline(i * STEPS_EACH_1D, color="k", lw=0.3, alpha=0.3)
ax1.set(xlabel="Langevin step (levels separated by grey lines)", ylabel="$x$", title="40 annealed trajectories")
ax2.hist(np.asarray(samples_1d[:, 0]), bins=60, range=(-8, 8), density=True, alpha=0.5, label="annealed samples")
ax2.plot(grid_1d, pdf_true, "k", lw=1.5, label=r"true $p_{\sigma_L}$")
ax2.set(xlabel="$x$", ylabel="density", title="final samples")
ax2.legend(fontsize=8)
share_time_anneal = np.mean(np.asarray(traj_1d[:, :, 0]) < 0, axis=1)
share_time_plain = np.mean(np.asarray(plain_traj_1d[:, :, 0]) < 0, axis=1)
ax3.plot(steps_axis, share_time_anneal, label="annealed")
ax3.plot(steps_axis, share_time_plain, label=r"plain, $s_\theta(\cdot, \sigma_L)$")
ax3.axhline(0.1, color="k", ls="--", lw=1, label="true 0.1")
ax3.set(xlabel="Langevin step", ylabel="share with x < 0", title="small-mode share over time")
ax3.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The trajectories show the algorithm at work: at the first levels the chains swing widely across both modes; as
# $\sigma$ shrinks they commit to one. The share of the small mode drops from the uniform start's 0.5 to about 0.2
# within the first level and settles at 0.1 as the levels shrink. Plain Langevin starts from the same split and can
# only correct it by crossing the gap at the smallest noise level, one chain at a time. In one dimension, with modes
# only six units apart, it does cross, and after 1600 steps it has nearly caught up; but its answer depends on how
# long you run it (the share over time, right). With the distant modes of section 1 it would never get there.
#
# ## 5. The paper's 2D experiment with a learned network
#
# The same network architecture, trained on 10 000 samples of the 2D mixture of section 1 with its ten levels, then
# the same two samplers as in section 1, now driven by the network.

# %%
data_2d = paper_mixture.sample(key_data2, N_DATA)
start = time.perf_counter()
params_2d, losses_2d = sl.train.fit(ncsn_objective(SIGMAS_2D), sl.nets.ncsn_init(key_init2, 2, HIDDEN),
                                    key=key_train2, data=data_2d, steps=STEPS, batch_size=BATCH_SIZE,
                                    optimizer=optax.adam(LR))
train_seconds += time.perf_counter() - start


def learned_2d(x, sigma):
    return sl.nets.ncsn_apply(params_2d, x, sigma)


errors_2d = level_errors(learned_2d, paper_mixture, SIGMAS_2D)
annealed_learned = sl.samplers.annealed_langevin(learned_2d, x0_2d, key_anneal2, sigmas=SIGMAS_2D, eps=EPS_2D,
                                                 n_steps_each=STEPS_EACH_2D)
plain_learned = sl.samplers.langevin(lambda x: learned_2d(x, jnp.ones(x.shape[0])), x0_2d, key_plain2,
                                     step_size=EPS_2D, n_steps=n_total_2d)

# %%
# NBVAL_CHECK_OUTPUT
share_annealed_2d, share_plain_2d = small_mode_share(annealed_learned), small_mode_share(plain_learned)
print(f"learned 2D NCSN: largest relative Fisher divergence over the levels {errors_2d.max():.4f}")
print(f"small-mode share (true 0.2): annealed {share_annealed_2d:.3f}, plain Langevin at sigma_L {share_plain_2d:.3f}")
assert errors_2d.max() < 0.05
assert abs(share_annealed_2d - 0.2) < 0.04 and abs(share_plain_2d - 0.2) > 0.15

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
for ax, x, title in ((axes[0], plain_learned, "plain Langevin, learned score"),
                     (axes[1], annealed_learned, "annealed Langevin, learned NCSN")):
    ax.scatter(*np.asarray(x).T, s=2, alpha=0.4)
    ax.set(xlim=(-10, 10), ylim=(-10, 10), aspect="equal", title=title, xlabel="$x_1$", ylabel="$x_2$")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Watching the scores form
#
# The animation replays the 1D training: at four levels, the learned score (thin) against the true perturbed score
# (thick) every 250 steps. The large levels, whose targets are smooth, are learned first.

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))


def animation_frame(k):
    step, params = snapshots_1d[k]
    ax.clear()
    for c, i in enumerate(show_levels):
        s = float(sigmas_1d[i])
        ax.plot(grid_1d, mixture_1d.perturbed(s).score(grid_1d), color=f"C{c}", lw=3, alpha=0.3)
        ax.plot(grid_1d, sl.nets.ncsn_apply(params, grid_1d, jnp.full((401,), s)), color=f"C{c}", lw=1.2,
                label=f"sigma = {s:.2f}")
    ax.set(xlim=(-8, 8), ylim=(-6, 6), xlabel="$x$", ylabel="score", title=f"training step {step}")
    ax.legend(fontsize=7, loc="lower left")


gif = sl.plotting.animation_gif(fig, animation_frame, len(snapshots_1d), fps=4)
assert len(gif) < 800_000
Image(gif, format="gif")

# %% [markdown]
# And a slider over the noise level: the perturbed density with the data (left), and the true and learned scores at
# that level (right), with the level's Fisher divergence.

# %%
def draw_level(level=N_LEVELS_1D):
    s = float(sigmas_1d[level - 1])
    fig, (ax1, ax2) = plt.subplots(1, 2)
    ax1.hist(np.asarray(data_1d[:, 0]), bins=80, range=(-8, 8), density=True, alpha=0.3, color="k", label="data")
    ax1.plot(grid_1d, np.exp(np.asarray(mixture_1d.perturbed(s).log_prob(grid_1d))), label=r"$p_\sigma$")
    ax1.set(xlabel="$x$", ylabel="density", title=f"level {level}: sigma = {s:.3f}", ylim=(0, 0.4))
    ax1.legend(fontsize=8)
    ax2.plot(grid_1d, mixture_1d.perturbed(s).score(grid_1d), "k", lw=3, alpha=0.3, label="true")
    ax2.plot(grid_1d, learned_1d(grid_1d, jnp.full((401,), s)), label="learned")
    ax2.set(xlabel="$x$", ylabel="score", ylim=(-6, 6),
            title=f"relative Fisher divergence {errors_1d[level - 1]:.4f}")
    ax2.legend(fontsize=8)
    plt.tight_layout()


draw_level()
plt.show()

# %%
import ipywidgets as widgets

sl.widgets.interactive_figure(draw_level, level=widgets.IntSlider(value=N_LEVELS_1D, min=1, max=N_LEVELS_1D,
                                                                  description="level"))

# %% [markdown]
# ## 7. Interactive: the sampler's settings
#
# The written-out sampler of section 2 takes the step size, the steps per level and the number of levels (between
# the same $\sigma_1 = 2$ and $\sigma_L = 0.5$) as traced numbers, so it is compiled once and each slider move only
# runs it (250 chains, well under a second). One level means plain Langevin at $\sigma_L$. Try a large
# $\varepsilon$ (the chains overshoot and the histogram widens) and few levels with few steps.

# %%
x0_widget = x0_1d[:250]  # each move costs about 0.2 ms per Langevin step for 250 chains


@lru_cache(maxsize=256)  # settings seen before redraw at once
def widget_samples(eps, steps_each, n_levels):
    x = annealed_langevin_inline(learned_1d, x0_widget, key_widget, SIGMA_MAX_1D, SIGMA_MIN_1D, n_levels, eps,
                                 steps_each)
    return np.asarray(x[:, 0])


def draw_sampler(eps=EPS_1D, steps_each=STEPS_EACH_1D, n_levels=N_LEVELS_1D):
    x = widget_samples(eps, steps_each, n_levels)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(x, bins=60, range=(-8, 8), density=True, alpha=0.5)
    ax.plot(grid_1d, pdf_true, "k", lw=1.5, label=r"true $p_{\sigma_L}$")
    finite = np.isfinite(x)
    ax.set(xlabel="$x$", ylabel="density", ylim=(0, 0.45),
           title=f"eps = {eps:.3g}, {steps_each} steps x {n_levels} levels: small-mode share "
                 f"{np.mean(x[finite] < 0):.3f} (true 0.1)")
    ax.legend(fontsize=8)
    if not finite.all():
        print(f"{(~finite).sum()} chains diverged: the step size is too large for this score")
    plt.tight_layout()


draw_sampler()
plt.show()

# %%
sl.widgets.interactive_figure(
    draw_sampler,
    eps=widgets.FloatLogSlider(value=EPS_1D, base=10, min=-3, max=0, step=0.25, description="eps"),
    steps_each=widgets.IntSlider(value=STEPS_EACH_1D, min=5, max=100, step=5, description="steps/level"),
    n_levels=widgets.IntSlider(value=N_LEVELS_1D, min=1, max=20, description="levels"),
)

# %% [markdown]
# ## Summary
#
# - Langevin dynamics with the exact score can take forever to balance separated modes: the score near each mode
#   knows nothing about the other's weight. Annealing from a noise level that merges the modes down to a small one
#   sets the weights while crossing is still easy.
# - A noise-conditional network learns the scores of all perturbed densities at once with the multi-level DSM loss;
#   the weights $\lambda(\sigma) = \sigma^2$ make every level's term of the same size.
# - Annealed Langevin uses steps $a_i = \varepsilon\sigma_i^2/\sigma_L^2$ and a fixed number of steps per level.
# - In 1D and 2D, the learned NCSN recovers the mode weights (0.1 and 0.2) within sampling error where plain
#   Langevin does not, and the pdf recovered from its smallest level has the right weights, unlike notebook 01's.
#
# ## Exercises
#
# 1. Song & Ermon (2020) suggest taking $\sigma_1$ about as large as the largest distance between two training
#    points. Compute it for `data_1d`, retrain with that $\sigma_1$ (and more levels to keep the ratio), and compare
#    the small-mode share and the trajectories.
# 2. What happens with $\varepsilon = 0.5$? Explain the width of the histogram from the step size at the smallest
#    level.
# 3. Sample with 4 levels instead of 16, keeping the total number of steps. What changes, and why is the share still
#    reasonable?
#
# <details><summary>Solution 1</summary>
#
# `float(data_1d.max() - data_1d.min())` is about 12, so $\sigma_1 \approx 12$. Keeping the ratio
# $\sigma_{i+1}/\sigma_i = (0.5/2)^{1/15} \approx 0.91$ needs about $1 + \log(12/0.5)/\log(1/0.91) \approx 35$ levels.
# The first levels now merge both modes completely (the perturbed density is one bump), so the share no longer depends
# on the starting distribution at all; with $\sigma_1 = 2$ it depends on it weakly, because at $\sigma_1$ the gap is
# already visible. The cost is more levels, i.e. more steps.
# </details>
#
# <details><summary>Solution 2</summary>
#
# At the smallest level $a_L = \varepsilon = 0.5$, while the perturbed modes have variance $v = 1.25$. The
# unadjusted Langevin update on a Gaussian of variance $v$ is a linear recursion whose stationary variance is
# $v/(1 - a/(2v))$: 25% too wide at $a = 0.5$; at the first levels $a_1 = 0.5 \cdot 16 = 8 > 2v_1$ and the
# recursion is unstable, so chains explode. The step must stay well below the smallest variance at every level,
# which the $\sigma_i^2$ scaling keeps constant in relative terms.
# </details>
#
# <details><summary>Solution 3</summary>
#
# With 4 levels (2, 1.26, 0.79, 0.5) and 400 steps each (`annealed_langevin_inline(learned_1d, x0_1d, key_widget, 2.0, 0.5, 4, 0.05, 400)`), the share is still close to 0.1: what matters is that an
# early level merges the modes and that the steps at that level suffice to mix. Fewer levels mean bigger jumps in
# $\sigma$, so the chains enter each level further from its equilibrium; with very few steps per level this shows up
# as a biased share or a widened histogram. Try 5 steps per level with 4 and with 20 levels in the widget.
# </details>
#
# ## References
#
# 1. Y. Song, S. Ermon (2019). Generative modeling by estimating gradients of the data distribution. *NeurIPS 32*.
#    [arXiv:1907.05600](https://arxiv.org/abs/1907.05600)
# 2. Y. Song, S. Ermon (2020). Improved techniques for training score-based generative models. *NeurIPS 33*.
#    [arXiv:2006.09011](https://arxiv.org/abs/2006.09011)
# 3. P. Vincent (2011). A connection between score matching and denoising autoencoders. *Neural Computation* 23(7),
#    1661-1674. [doi:10.1162/NECO_a_00142](https://doi.org/10.1162/NECO_a_00142)
# 4. G. O. Roberts, R. L. Tweedie (1996). Exponential convergence of Langevin distributions and their discrete
#    approximations. *Bernoulli* 2(4), 341-363. [doi:10.2307/3318418](https://doi.org/10.2307/3318418)

# %%
print(f"training time {train_seconds:.1f} s; notebook run time {time.perf_counter() - notebook_start:.0f} s")
