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
# # 04 · Denoising score matching and the kernel density estimate
#
# Notebooks 01–03 matched the score of the data with a loss that needs derivatives of the network. Denoising score
# matching (DSM) needs none: add noise to the data and regress the score onto the direction back to the clean point.
# The price is that DSM learns the score of the *noisy* data. For a finite sample, the noisy data density is a kernel
# density estimate (KDE), so its bandwidth decides what we learn. The setting (a mixture of three Gaussians, 200
# samples, KDEs over a range of bandwidths) is the one of Ghyselincks's blog post [5].
#
# In this notebook you will:
#
# - write the KDE of a sample as a Gaussian mixture $q_h = \frac1n\sum_i\mathcal N(\mathbf x_i, h^2 I)$ and compute
#   its score exactly and stably with log-sum-exp, and see the NaNs that a naive $\log\sum\exp$ produces away
#   from the data;
# - measure the bandwidth trade-off: Fisher divergences $D_F = \tfrac12\mathbb E|\nabla\log q_h - \nabla\log p|^2$
#   from the KDE score to the noise-perturbed truth and to the truth itself, and the held-out log-likelihood, over
#   a range of bandwidths $h$;
# - derive the DSM loss $\tfrac12\mathbb E|s(\mathbf x + \sigma\mathbf z) + \mathbf z/\sigma|^2$ and prove that on a
#   finite sample its minimiser is exactly the KDE score at bandwidth $\sigma$, then watch a trained network approach
#   it;
# - measure how the noise of the DSM loss grows as $\sigma$ shrinks: its standard deviation over noise draws like
#   $1/\sigma^2$ (a variance like $1/\sigma^4$), that of its gradient like $1/\sigma$, which is why notebook 05 uses
#   many noise levels;
# - move a bandwidth slider and watch the KDE and its score change.

# %%
import functools
import time

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from matplotlib.ticker import MaxNLocator, NullLocator, StrMethodFormatter
from scipy.spatial.distance import cdist

import scorelib as sl

sl.plotting.use_course_style()
notebook_start = time.perf_counter()

# %% [markdown]
# ## Hyperparameters

# %%
SEED = 0
N_SAMPLES = 200  # the sample size of Ghyselincks's post
N_FRESH = 10_000  # fresh samples of the truth, for expectations and held-out likelihood
BANDWIDTHS = np.round(np.geomspace(0.05, 2.0, 13), 3)  # the grid of KDE bandwidths h
WINDOW = (-3.5, 3.5)  # plot window in both coordinates
GRID_SIZE = 80  # density images and the NaN map: GRID_SIZE x GRID_SIZE points
QUIVER_SIZE = 15  # arrows per side in the score fields
H_DEMO = 0.1  # bandwidth of the naive-vs-stable comparison
N_SLOPE = 4  # the smallest bandwidths, for the log-log slope of the score error
LL_RANGE = (-6.0, -2.5)  # y range of the likelihood panel; points below it are marked at its edge

SIGMA = 0.3  # DSM noise level (a bandwidth near the best held-out likelihood, see section 3)
SIZES = (2, 128, 128, 128, 2)  # MLP with softplus activations
STEPS = 5000
BATCH_SIZE = 500  # each step sees every training point about 2.5 times, each with fresh noise
LR = 3e-3  # peak learning rate of the cosine schedule
SNAPSHOT_EVERY = 500
N_COPIES = 100  # noisy copies of every training point, to evaluate under q_sigma
SLICE_X2 = -1.0  # the scores are compared along the grid row nearest the line x_2 = SLICE_X2 (through two modes)
ZOOM = (-2.5, 2.5)  # the window of that comparison, where the data are

VARIANCE_SIGMAS = np.round(np.geomspace(0.01, 1.0, 9), 4)  # noise levels for the variance study
VARIANCE_DRAWS = 256  # independent noise draws of the full-sample DSM loss at each level
VARIANCE_FIT_MAX = 0.1  # fit the log-log slopes for sigma <= this

SAMPLE_SIZES = (50, 200, 2000)  # Exercise 2: sample sizes whose best bandwidths are compared
N_REPEATS = 4  # Exercise 2: samples of each size, whose held-out likelihood curves are averaged
SIGMA_SMALL = 0.05  # a small noise level for Exercise 3's denoiser

lr_schedule = optax.cosine_decay_schedule(LR, STEPS)
key = jax.random.key(SEED)
key_data, key_fresh, key_pert, key_init, key_train, key_noisy, key_var, key_small = jax.random.split(key, 8)
key_sizes = jax.random.fold_in(key, 8)  # Exercise 2's samples (folded in: the eight keys above stay as they were)

# %% [markdown]
# ## 1. Ground truth: a mixture of three Gaussians
#
# The distribution of Ghyselincks's post [5]: means $(-1,-1)$, $(1,1)$, $(1,-1)$, covariances
# $\begin{psmallmatrix}0.5 & 0.3\\ 0.3 & 0.5\end{psmallmatrix}$ for the first two and $0.5I$ for the third, weights
# 0.2, 0.2, 0.6. `sl.data.GaussianMixture` gives its density and its exact score. The post drew its 200 points by
# rejection inside the box $[-3, 3]^2$, which silently cuts off the tails; sampling the mixture directly does not.

# %%
mixture = sl.data.GaussianMixture(
    means=[[-1, -1], [1, 1], [1, -1]],
    covs=[[[0.5, 0.3], [0.3, 0.5]], [[0.5, 0.3], [0.3, 0.5]], [[0.5, 0.0], [0.0, 0.5]]],
    weights=[0.2, 0.2, 0.6],
)
x_data = mixture.sample(key_data, N_SAMPLES)
x_fresh = mixture.sample(key_fresh, N_FRESH)


def show_density(ax, log_prob_fn, title, *, window, n, points=None):
    """The density exp(log_prob_fn) as an image on an n x n grid over window^2, with optional points on top."""
    X, _, pts = sl.plotting.grid_2d(window, window, n)
    density = np.exp(np.asarray(log_prob_fn(pts))).reshape(X.shape)
    ax.imshow(density, origin="lower", extent=(*window, *window), cmap="Blues", aspect="equal")
    if points is not None:
        ax.scatter(points[:, 0], points[:, 1], s=4, color="k", alpha=0.6)
    ax.set(xlim=window, ylim=window, title=title, xlabel="$x_1$", ylabel="$x_2$", xticks=[-3, 0, 3], yticks=[-3, 0, 3])
    ax.grid(False)
    return ax


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.8))
show_density(ax1, mixture.log_prob, f"true density and {N_SAMPLES} samples", window=WINDOW, n=GRID_SIZE,
             points=np.asarray(x_data))
show_density(ax2, mixture.log_prob, "true score (arrow length log(1+|s|))", window=WINDOW, n=GRID_SIZE)
sl.plotting.plot_score_field(ax2, mixture.score, WINDOW, WINDOW, n=QUIVER_SIZE, color="C3")
plt.show()

# %% [markdown]
# ## 2. The KDE is a mixture, and its score has a closed form
#
# The Gaussian KDE of points $\mathbf x_1, \dots, \mathbf x_n$ at bandwidth $h$ is
# $q_h(\mathbf x) = \frac1n\sum_i \mathcal N(\mathbf x; \mathbf x_i, h^2 I)$: a mixture of $n$ equal-weight
# Gaussians. Its score is a weighted average of the pulls towards each point,
#
# $$ \nabla\log q_h(\mathbf x) = \sum_i w_i(\mathbf x)\,\frac{\mathbf x_i - \mathbf x}{h^2}, \qquad
#    w_i(\mathbf x) = \operatorname{softmax}_i\Big(-\frac{|\mathbf x - \mathbf x_i|^2}{2h^2}\Big). $$
#
# The weights are a softmax, so they can be computed from the exponents without ever forming the density: subtract
# the largest exponent first (log-sum-exp). Ghyselincks's post [5] instead took the log of a density evaluated on a
# grid and differentiated it with finite differences. Where the density underflows to zero, $\log 0 = -\infty$, and
# the gradient is $\infty - \infty$: the holes and streaks in its figures. Below, the same thing with automatic
# differentiation of the naive formula, at $h = 0.1$ on a grid reaching 3.5 from the origin.

# %%
def kde_score_inline(points, h, x):
    """Score of the KDE written out: a softmax of the kernel exponents weights the pulls (x_i - x) / h^2."""
    sq = jnp.sum((x[:, None, :] - points[None]) ** 2, axis=2)
    w = jax.nn.softmax(-sq / (2 * h**2), axis=1)
    return jnp.einsum("nm,nmd->nd", w, points[None] - x[:, None, :]) / h**2


def naive_log_kde(points, h, x):
    """log q_h(x) for one point x, through the density itself: -inf where every kernel underflows."""
    sq = jnp.sum((x - points) ** 2, axis=1)
    return jnp.log(jnp.mean(jnp.exp(-sq / (2 * h**2))) / (2 * jnp.pi * h**2))


_, _, grid = sl.plotting.grid_2d(WINDOW, WINDOW, GRID_SIZE)
kde_demo = sl.data.kde(x_data, H_DEMO)
np.testing.assert_allclose(kde_score_inline(x_data, H_DEMO, grid), kde_demo.score(grid), rtol=1e-4, atol=1e-3)

# %% [markdown]
# Where exactly does the naive formula fail? In single precision the smallest normal number is $e^{-87.3}$; below it
# XLA on a CPU flushes results to zero (no subnormals), so $e^{-u} = 0$ for $u > 87.3$. The naive formula also
# divides the sum by $n$ before taking the log, so it returns $-\infty$ once the nearest point's exponent
# $u_{\min} = \min_i|\mathbf x - \mathbf x_i|^2/(2h^2)$ exceeds $87.3 - \ln n$: farther than
# $r^\star = h\sqrt{2(87.3 - \ln n)}$ from every sample.

# %%
# NBVAL_CHECK_OUTPUT
u_normal = -float(np.log(np.finfo(np.float32).tiny))  # e^{-u_normal} is float32's smallest normal number
print(f"float32: exp(-87) = {float(jnp.exp(-jnp.float32(87.0))):.3g}, exp(-87.5) = "
      f"{float(jnp.exp(-jnp.float32(87.5))):.3g}; smallest normal = e^-{u_normal:.2f}")
assert float(jnp.exp(-jnp.float32(87.0))) > 0 and float(jnp.exp(-jnp.float32(87.5))) == 0

naive_scores = jax.vmap(jax.grad(lambda p: naive_log_kde(x_data, H_DEMO, p)))(grid)
naive_bad = ~np.all(np.isfinite(np.asarray(naive_scores)), axis=1)
stable_bad = ~np.all(np.isfinite(np.asarray(kde_demo.score(grid))), axis=1)
r_star = H_DEMO * np.sqrt(2 * (u_normal - np.log(N_SAMPLES)))
nearest = cdist(grid, np.asarray(x_data)).min(axis=1)
predicted_bad = nearest > r_star
print(f"h = {H_DEMO}: the naive score is non-finite at {naive_bad.mean():.0%} of the grid, the log-sum-exp score "
      f"at {stable_bad.sum()} points; predicted: farther than r* = {r_star:.2f} from every sample, "
      f"{predicted_bad.mean():.0%} of the grid")
assert naive_bad.mean() > 0.1 and stable_bad.sum() == 0
assert np.mean(predicted_bad != naive_bad) < 0.005, "the underflow radius should predict where the naive score fails"

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.8))
for ax, scores, title in ((ax1, naive_scores, "naive log of the KDE"), (ax2, kde_demo.score(grid), "log-sum-exp")):
    s = np.asarray(scores)
    ax.imshow(np.where(np.isfinite(s).all(axis=1), 0.0, 1.0).reshape(GRID_SIZE, GRID_SIZE), origin="lower",
              extent=(*WINDOW, *WINDOW), cmap="Reds", vmin=0, vmax=1.5)
    ax.scatter(x_data[:, 0], x_data[:, 1], s=4, color="k")
    ax.set(title=f"{title}: red = non-finite score (h = {H_DEMO})", xlabel="$x_1$", ylabel="$x_2$")
    ax.grid(False)
ax1.contour(grid[:, 0].reshape(GRID_SIZE, GRID_SIZE), grid[:, 1].reshape(GRID_SIZE, GRID_SIZE),
            nearest.reshape(GRID_SIZE, GRID_SIZE), levels=[r_star], colors="C0", linewidths=1.5)
ax1.plot([], [], color="C0", label=f"distance r* = {r_star:.2f} from the nearest sample")
fig.legend(loc="outside lower center")  # below the panels, where it hides neither the red region nor the contour
plt.show()

# %% [markdown]
# The blue contour, the predicted edge of the underflow, traces the edge of the red region; the check above asserts
# that it misclassifies fewer than 0.5% of the grid points. From now on every KDE is an `sl.data.kde` mixture,
# exact everywhere.
#
# ## 3. The bandwidth trade-off, in numbers
#
# Three ways to judge a bandwidth, each computed from closed forms at every $h$ of the grid:
#
# - **$D_F(q_h \,\|\, p_h)$**, the Fisher divergence between the KDE score and the score of the truth convolved with
#   the same kernel, $p_h = p * \mathcal N(0, h^2 I)$ (`mixture.perturbed(h)`), under $p_h$. This is what DSM at
#   noise $h$ aims at in the infinite-data limit: $q_h$ is a Monte-Carlo estimate of $p_h$.
# - **$D_F(q_h \,\|\, p)$**, against the clean truth, under $p$: how useful the KDE score is as a score of the data.
# - **the held-out log-likelihood** $\mathbb E_p \log q_h$ on fresh samples, the classical way to choose $h$.
#
# Each is an average over $10^4$ samples, so each comes with its Monte-Carlo standard error:
# `sl.metrics.fisher_divergence(..., return_se=True)` and `sl.metrics.mean_with_se` return an `Estimate`
# (value, se) that prints as "value ± se", rounded at the first significant digit of the error.

# %%
def bandwidth_table(points, bandwidths, truth, x_truth, key):
    """Score errors and held-out likelihood of the KDE of `points` at each bandwidth, against the density `truth`.

    x_truth are fresh samples of `truth`; `key` draws the samples of each blurred truth p_h.
    """
    rows = []
    for h in bandwidths:
        q, p_h = sl.data.kde(points, float(h)), truth.perturbed(float(h))
        rows.append(dict(
            h=float(h),
            vs_perturbed=sl.metrics.fisher_divergence(q.score, p_h.score, p_h.sample(key, len(x_truth)),
                                                      return_se=True),
            vs_truth=sl.metrics.fisher_divergence(q.score, truth.score, x_truth, return_se=True),
            heldout_ll=sl.metrics.mean_with_se(q.log_prob(x_truth)),
        ))
    return rows


table = bandwidth_table(x_data, BANDWIDTHS, mixture, x_fresh, key_pert)
hs = np.array([r["h"] for r in table])
vs_perturbed = np.array([r["vs_perturbed"][0] for r in table])
vs_truth = np.array([r["vs_truth"][0] for r in table])
heldout_ll = np.array([r["heldout_ll"][0] for r in table])
best_ll = table[int(np.argmax(heldout_ll))]
best_fisher = table[int(np.argmin(vs_truth))]
C_truth = sl.metrics.mean_with_se(0.5 * jnp.sum(mixture.score(x_fresh) ** 2, axis=1))  # D_F of the zero field
small_h_slope = np.polyfit(np.log(hs[:N_SLOPE]), np.log(vs_truth[:N_SLOPE]), 1)[0]
# Every h is scored on the same fresh points, so compare the best bandwidth's neighbours with it point by point.
i_best = int(np.argmax(heldout_ll))
log_q_best = sl.data.kde(x_data, float(hs[i_best])).log_prob(x_fresh)
neighbour_gaps = {float(hs[j]): sl.metrics.mean_with_se(sl.data.kde(x_data, float(hs[j])).log_prob(x_fresh)
                                                         - log_q_best) for j in (i_best - 1, i_best + 1)}

# %%
# NBVAL_CHECK_OUTPUT
print("     h    D_F(q_h||p_h)      D_F(q_h||p)    held-out log-lik")
for r in table:
    print(f"{r['h']:6.3f} {r['vs_perturbed']:>16} {r['vs_truth']:>16} {r['heldout_ll']:>19}")
print(f"best held-out likelihood at h = {best_ll['h']}; smallest D_F to the truth at h = {best_fisher['h']} "
      f"({best_fisher['vs_truth']}; zero field {C_truth})")
print(f"log-log slope of D_F(q_h||p) over the {N_SLOPE} smallest h: {small_h_slope:.1f}")
print("held-out log-likelihood minus that of the best h, on the same points: "
      + ", ".join(f"h = {h}: {gap}" for h, gap in neighbour_gaps.items()))
assert np.all(np.diff(vs_perturbed) < 0), "the KDE approaches the perturbed truth as h grows"
assert 0.2 < best_ll["h"] < 0.6 and 0.2 < best_fisher["h"] < 0.8
assert best_fisher["vs_truth"][0] < 0.5 * C_truth[0]
assert -4.6 < small_h_slope < -3.6, "at small h the score error should grow like h^-4"
assert all(-0.05 < gap.value < -3 * gap.se for gap in neighbour_gaps.values()), "flat, yet resolved, near the best h"

# %%
fig, (ax1, ax2) = plt.subplots(1, 2)
ax1.loglog(hs, vs_perturbed, "o-", label=r"$D_F(q_h\,\|\,p_h)$, vs perturbed truth")
ax1.loglog(hs, vs_truth, "s-", label=r"$D_F(q_h\,\|\,p)$, vs clean truth")
ax1.axhline(C_truth[0], color="k", ls=":", lw=1, label="zero field vs clean truth")
ax1.set(xlabel="bandwidth $h$", ylabel="Fisher divergence", title="score error vs bandwidth")
ax1.legend()
shown = heldout_ll >= LL_RANGE[0]  # points below the panel's range are marked at its lower edge
ax2.semilogx(hs[shown], heldout_ll[shown], "o-", color="C2")
ax2.semilogx(hs[~shown], np.full((~shown).sum(), LL_RANGE[0]), "v", color="C2", ms=8, clip_on=False)
for h, ll in zip(hs[~shown], heldout_ll[~shown], strict=True):
    ax2.annotate(f"h = {h}: {ll:.1f}, below the axis", (h, LL_RANGE[0]), xytext=(0.25, 0.08),
                 textcoords="axes fraction", arrowprops=dict(arrowstyle="->", color="C2"))
ax2.axvline(best_ll["h"], color="C2", ls="--", lw=1, label=f"best h = {best_ll['h']}")
ax2.set(xlabel="bandwidth $h$", ylabel=r"$E_p \log q_h$", title="held-out log-likelihood", ylim=LL_RANGE)
ax2.legend(loc="center right")
plt.show()

# %% [markdown]
# Small bandwidths make the KDE a set of spikes: its score points to the nearest sample with strength $|\mathbf x_i -
# \mathbf x|/h^2$, and the distance to the nearest sample is set by the sample's spacing, not by $h$, so the squared
# error against any smooth density approaches $h^{-4}$ (the fitted slope above, somewhat steeper than $-4$ because at
# the largest of those bandwidths the kernel still averages neighbouring samples; both curves on the left). Large
# bandwidths blur everything towards one broad Gaussian: the KDE then matches the equally blurred truth $p_h$ ever
# better (the first column decreases at every step, asserted), but it is no longer a model of $p$, and the error against
# the clean truth grows again. The best bandwidth for the score and the best for the likelihood are printed above the
# figure; both lie in between, about where the sample's spacing and the structure of $p$ meet. Near its maximum the
# held-out likelihood is flat: the two neighbours of the best bandwidth lose only hundredths of a nat per point (the
# last line printed above the figure). Every bandwidth is scored on the same fresh points, so those differences are
# measured point by point, with standard errors much smaller than the ± of each value in the table: for this sample of
# 200 the best grid point is resolved (asserted), but a neighbouring bandwidth would serve almost as well.
#
# ## 4. Denoising score matching learns the KDE score
#
# Take a data point $\mathbf x$, add noise $\tilde{\mathbf x} = \mathbf x + \sigma\mathbf z$. The score of the
# noise kernel at the noisy point is $\nabla_{\tilde{\mathbf x}}\log\mathcal N(\tilde{\mathbf x}; \mathbf x,
# \sigma^2 I) = -(\tilde{\mathbf x} - \mathbf x)/\sigma^2 = -\mathbf z/\sigma$, and DSM regresses the model onto it:
#
# $$ L_{\text{DSM}}(s) = \tfrac12\,\mathbb E_{\mathbf x}\mathbb E_{\mathbf z}\,
#    \big|s(\mathbf x + \sigma\mathbf z) + \mathbf z/\sigma\big|^2 . $$
#
# **The minimiser.** Let $\mathbf x$ be uniform on the sample, so $\tilde{\mathbf x}$ has density $q_\sigma$, the
# KDE at bandwidth $\sigma$. Write the loss as $\tfrac12\mathbb E_{\tilde{\mathbf x}}\,\mathbb E[\,|s(\tilde{\mathbf
# x}) - \mathbf t|^2 \mid \tilde{\mathbf x}]$ with target $\mathbf t = (\mathbf x - \tilde{\mathbf x})/\sigma^2$.
# For each $\tilde{\mathbf x}$ this is a least-squares problem in the single vector $s(\tilde{\mathbf x})$, solved by
# the conditional mean of the target. By Bayes, $P(\mathbf x = \mathbf x_i \mid \tilde{\mathbf x}) = w_i(\tilde{\mathbf
# x})$, the softmax weights of section 2 with $h = \sigma$, so
#
# $$ s^\star(\tilde{\mathbf x}) = \sum_i w_i(\tilde{\mathbf x})\frac{\mathbf x_i - \tilde{\mathbf x}}{\sigma^2}
#    = \nabla\log q_\sigma(\tilde{\mathbf x}). $$
#
# Expanding the square around $s^\star$ gives the identity behind it (Vincent [1]):
# $L_{\text{DSM}}(s) = D_F(s \,\|\, q_\sigma) + L_{\text{DSM}}(s^\star)$, with $D_F = \tfrac12\mathbb E_{q_\sigma}|s -
# \nabla\log q_\sigma|^2$. A flexible enough network trained long enough with DSM on $n$ points therefore converges to
# the KDE score, the spiky one for small $\sigma$, not to the score of $p_\sigma$. Training with fresh data each step
# (as in notebooks 02–03) would instead target $p_\sigma$ itself.
#
# The loss in four lines, checked against `sl.losses.dsm_loss` with the same key (so the same noise $\mathbf z$), on
# the untrained network and on the KDE score, with $N_{\text{copies}} = 100$ copies of every training point. The
# network's score function binds its parameters: `sl.nets.bind(sl.nets.mlp_apply, params)` is
# `lambda x: sl.nets.mlp_apply(params, x)`.

# %%
def dsm_loss_inline(score_fn, x, key, sigma):
    z = jax.random.normal(key, x.shape)
    residual = score_fn(x + sigma * z) + z / sigma  # the model's score vs the kernel's score -z / sigma
    return 0.5 * jnp.mean(jnp.sum(residual**2, axis=1))


params_init = sl.nets.mlp_init(key_init, SIZES)
kde_sigma = sl.data.kde(x_data, SIGMA)
x_repeated = jnp.tile(x_data, (N_COPIES, 1))  # every training point N_COPIES times, for the evaluation below
for fn in (sl.nets.bind(sl.nets.mlp_apply, params_init), kde_sigma.score):
    np.testing.assert_allclose(dsm_loss_inline(fn, x_repeated, key_noisy, SIGMA),
                               sl.losses.dsm_loss(fn, x_repeated, key_noisy, SIGMA), rtol=1e-5)

# %% [markdown]
# We train on the 200 points with `sl.losses.dsm_loss`: `sl.train.fit` draws minibatches with replacement from the
# fixed sample, with a fresh noise draw for every point in every batch, and keeps snapshots to follow the distance
# to both candidates during training.

# %%
def dsm_objective(params, batch, key, *, sigma):
    return sl.losses.dsm_loss(sl.nets.bind(sl.nets.mlp_apply, params), batch, key, sigma)


start = time.perf_counter()
result = sl.train.fit(functools.partial(dsm_objective, sigma=SIGMA), params_init, key=key_train, data=x_data,
                      steps=STEPS, batch_size=BATCH_SIZE, optimizer=optax.adam(lr_schedule),
                      snapshot_every=SNAPSHOT_EVERY)
train_seconds = time.perf_counter() - start
params = result.params
score_fn = sl.nets.bind(sl.nets.mlp_apply, params)

# %% [markdown]
# Both distances are measured under $q_\sigma$, on the $N_{\text{copies}} = 100$ noisy copies of every training
# point, and reported relative to $\tfrac12\mathbb E_{q_\sigma}|\nabla\log q_\sigma|^2$ (the divergence of the zero
# field). The noisy points are drawn exactly as `dsm_loss` draws its noise from `key_noisy` (the check above), so
# the per-point losses below and the divergences see the same noise.

# %%
p_sigma = mixture.perturbed(SIGMA)
x_noisy = x_repeated + SIGMA * jax.random.normal(key_noisy, x_repeated.shape)  # exact samples of q_sigma
scale = sl.metrics.mean_with_se(0.5 * jnp.sum(kde_sigma.score(x_noisy) ** 2, axis=1))[0]


def relative_fisher(fn, reference, x, scale):
    """Fisher divergence under the points x, and its standard error, in units of `scale`."""
    value, se = sl.metrics.fisher_divergence(fn, reference, x, return_se=True)
    return sl.metrics.Estimate(value / scale, se / scale)


history = [(step, relative_fisher(sl.nets.bind(sl.nets.mlp_apply, p), kde_sigma.score, x_noisy, scale),
            relative_fisher(sl.nets.bind(sl.nets.mlp_apply, p), p_sigma.score, x_noisy, scale))
           for step, p in result.snapshots]

# %%
# NBVAL_CHECK_OUTPUT
net_vs_kde, net_vs_truth = history[-1][1], history[-1][2]
kde_vs_truth = relative_fisher(kde_sigma.score, p_sigma.score, x_noisy, scale)
closest = min(history, key=lambda r: r[2][0])
print(f"after {STEPS} steps, relative Fisher divergences under q_sigma: network vs KDE score {net_vs_kde}, "
      f"network vs perturbed truth {net_vs_truth}, KDE vs perturbed truth {kde_vs_truth}")
print(f"closest to the perturbed truth at step {closest[0]}: {closest[2]} "
      f"(and {closest[1]} from the KDE)")
assert net_vs_kde[0] < 0.1 and net_vs_kde[0] < kde_vs_truth[0] / 3, "the DSM network should approach the KDE score"
assert closest[2][0] < kde_vs_truth[0] - 3 * kde_vs_truth[1], "early in training the network is smoother than the KDE"
assert closest[1][0] < kde_vs_truth[0] - 3 * kde_vs_truth[1], "and then it lies between the KDE and the truth"

# %% [markdown]
# Check the identity $L_{\text{DSM}}(s) - L_{\text{DSM}}(s^\star) = D_F(s\,\|\,q_\sigma)$ on the same noise draws,
# with the per-point losses `sl.losses.dsm_loss(..., reduction="none")`. Per point,
# $\tfrac12|s - \mathbf t|^2 - \tfrac12|s^\star - \mathbf t|^2 = \tfrac12|s - s^\star|^2 + (s - s^\star)\cdot(s^\star -
# \mathbf t)$, so on these draws the two sides differ by exactly the mean of the cross term (asserted to rounding).
# Its expectation is zero only because $s^\star$ is the conditional mean of the target $\mathbf t$; so the test is
# that the cross term's mean lies within three of its own (paired) standard errors of zero.

# %%
# NBVAL_CHECK_OUTPUT
loss_net = sl.losses.dsm_loss(score_fn, x_repeated, key_noisy, SIGMA, reduction="none")
loss_kde = sl.losses.dsm_loss(kde_sigma.score, x_repeated, key_noisy, SIGMA, reduction="none")
gap, gap_se = sl.metrics.mean_with_se(loss_net - loss_kde)
fisher_net = sl.metrics.fisher_divergence(score_fn, kde_sigma.score, x_noisy, return_se=True)
print(f"DSM loss of the network {sl.metrics.mean_with_se(loss_net)}, "
      f"of the KDE score {sl.metrics.mean_with_se(loss_kde)}")
target = -jax.random.normal(key_noisy, x_repeated.shape) / SIGMA  # the regression target -z / sigma of these draws
kde_at_noisy = kde_sigma.score(x_noisy)
cross = sl.metrics.mean_with_se(jnp.sum((score_fn(x_noisy) - kde_at_noisy) * (kde_at_noisy - target), axis=1))
print(f"gap {sl.metrics.Estimate(gap, gap_se)} vs D_F(net || q_sigma) {fisher_net}; their difference is the mean "
      f"cross term (s - s*).(s* - t), {cross}")
np.testing.assert_allclose(gap - fisher_net[0], cross[0], atol=1e-4)  # the algebra, on the same draws
assert abs(cross[0]) < 3 * cross[1], "the cross term has mean zero only if s* is the minimiser"

# %%
steps_hist = [r[0] for r in history]
fig, (ax1, ax2) = plt.subplots(1, 2)
sl.plotting.plot_loss(ax1, result.losses)
ax1.set(title=rf"DSM loss, $\sigma$ = {SIGMA}",
        ylim=(float(np.percentile(result.losses, 1)) - 0.2, float(result.losses[:SNAPSHOT_EVERY // 2].max())))
ax2.plot(steps_hist, [r[1][0] for r in history], "o-", label="network vs KDE score")
ax2.plot(steps_hist, [r[2][0] for r in history], "s-", label=r"network vs perturbed truth $p_\sigma$")
ax2.axhline(kde_vs_truth[0], color="k", ls=":", label="KDE vs perturbed truth")
ax2.set(xlabel="step", ylabel="relative Fisher divergence", yscale="log", title="what the network converges to")
ax2.legend()
plt.show()

# %% [markdown]
# Where do the scores differ? Arrows would hide it (the fields agree on the large scale), so look at the first
# component of the score along a line through two of the modes ($x_2 \approx -1$), and map the error
# $|s - \nabla\log p_\sigma|$ over the region where the data are. The colour scale stops near the 95th percentile
# of the KDE's error at samples of $q_\sigma$: the error far outside the data, where no sample lands, is larger
# still (black).

# %%
axis = np.linspace(*WINDOW, GRID_SIZE)  # the grid's coordinates along each axis
row = int(np.argmin(np.abs(axis - SLICE_X2)))
on_row, in_zoom = slice(row * GRID_SIZE, (row + 1) * GRID_SIZE), (axis >= ZOOM[0]) & (axis <= ZOOM[1])
near_line = np.abs(np.asarray(x_data[:, 1]) - axis[row]) < SIGMA
candidates = {  # name: (score function, line style)
    r"perturbed truth $p_\sigma$": (p_sigma.score, "k-"),
    "KDE score": (kde_sigma.score, "C0-"),
    "DSM network": (score_fn, "C1-"),
    f"network at step {closest[0]}": (sl.nets.bind(sl.nets.mlp_apply, dict(result.snapshots)[closest[0]]), "C1--"),
}
scores = {name: np.asarray(fn(grid)) for name, (fn, _) in candidates.items()}
truth_scores = scores[r"perturbed truth $p_\sigma$"]
errors = {name: np.linalg.norm(scores[name] - truth_scores, axis=1).reshape(GRID_SIZE, GRID_SIZE)
          for name in ("KDE score", "DSM network")}
kde_error_at_data = np.linalg.norm(np.asarray(kde_sigma.score(x_noisy) - p_sigma.score(x_noisy)), axis=1)
error_levels = MaxNLocator(nbins=10).tick_values(0, np.percentile(kde_error_at_data, 95))

fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.9), width_ratios=(1.3, 1, 1))
for name, (_, style) in candidates.items():
    axes[0].plot(axis[in_zoom], scores[name][on_row, 0][in_zoom], style, lw=1.5, label=name)
axes[0].plot(x_data[near_line, 0], np.full(near_line.sum(), axes[0].get_ylim()[0]), "|", color="k", ms=12,
             label=r"samples within $\sigma$ of the line")
axes[0].set(xlim=ZOOM, xlabel="$x_1$", ylabel=r"score component $s_1$", title=f"along the line $x_2 = {axis[row]:.2f}$")
axes[0].legend(loc="upper right")
for ax, (name, err) in zip(axes[1:], errors.items(), strict=True):
    im = ax.contourf(axis, axis, err, levels=error_levels,
                     cmap="magma_r", extend="max")
    ax.scatter(x_data[:, 0], x_data[:, 1], s=4, color="C0", alpha=0.8)
    ax.axhline(axis[row], color="k", lw=0.8, ls="--")
    ax.set(xlim=ZOOM, ylim=ZOOM, aspect="equal", title=rf"$|s - \nabla\log p_\sigma|$, {name}",
           xlabel="$x_1$", ylabel="$x_2$")
    ax.grid(False)
fig.colorbar(im, ax=axes[1:], shrink=0.9, label="error (scale ends near the KDE's 95th percentile)")
plt.show()

# %% [markdown]
# Along the line, the KDE score wiggles around the smooth truth: every sample close to the line pulls the score
# towards itself. The trained network (solid orange) reproduces most of these wiggles, while the network at the
# step closest to the truth (dashed) is smoother. On the maps the error is smallest in the dense bulk and largest
# where a few isolated samples dominate the KDE, and the trained network's map repeats the KDE's pattern. Early in
# training the network is a smooth function that lies between the two: at the step printed above as the closest, it
# is nearer the perturbed truth than the KDE is, and nearer the KDE than the truth is (both asserted). Its
# smoothness acts as a regulariser. As training continues, it fits the bumps of the KDE around individual points,
# and its distance to the truth grows back towards the KDE's. With a finite sample, DSM learns a smoothed KDE score;
# more data (or a larger $\sigma$) is what brings $q_\sigma$ closer to $p_\sigma$.
#
# ## 5. The cost of small noise: variance
#
# Why not take $\sigma$ tiny, so that $p_\sigma \approx p$? The target $-\mathbf z/\sigma$ has size $\sqrt d/\sigma$,
# so the per-point loss is dominated by $|\mathbf z|^2/(2\sigma^2)$, whose variance is $\operatorname{Var}(|\mathbf
# z|^2)/(4\sigma^4) = 1/\sigma^4$ in two dimensions. A mean over $n = 200$ points then has standard deviation about
# $1/(\sqrt{200}\,\sigma^2)$. The gradient's noisy part, $\partial_\theta s^\top\mathbf z/\sigma$, has a standard
# deviation that grows like $1/\sigma$. Below, the full-sample loss and gradient of the trained network, over 256
# noise draws at each $\sigma$.

# %%
@jax.jit
def loss_and_grad_draws(params, sigma, keys):
    return jax.vmap(lambda k: jax.value_and_grad(dsm_objective)(params, x_data, k, sigma=sigma))(keys)


variance_rows = []
for i, sigma in enumerate(VARIANCE_SIGMAS):
    keys = jax.random.split(jax.random.fold_in(key_var, i), VARIANCE_DRAWS)
    vals, grads = loss_and_grad_draws(params, float(sigma), keys)
    grad_std = np.sqrt(sum(float(jnp.sum(jnp.var(g, axis=0))) for g in jax.tree.leaves(grads)))
    grad_mean = np.sqrt(sum(float(jnp.sum(jnp.mean(g, axis=0) ** 2)) for g in jax.tree.leaves(grads)))
    variance_rows.append((float(sigma), float(jnp.std(vals)), grad_std, float(jnp.std(sigma**2 * vals)),
                          grad_mean / grad_std))
sig_v, loss_std, grad_std, weighted_std, grad_snr = map(np.array, zip(*variance_rows, strict=True))
# The KDE score at the largest level, the exact minimiser there: its loss on N_COPIES independent noise draws.
sigma_max = float(sig_v[-1])
kde_draws = sl.losses.dsm_loss(sl.data.kde(x_data, sigma_max).score, x_repeated, key_var, sigma_max, reduction="none")
kde_std_max = float(jnp.std(jnp.mean(kde_draws.reshape(N_COPIES, N_SAMPLES), axis=1)))
small = sig_v <= VARIANCE_FIT_MAX
loss_slope = np.polyfit(np.log(sig_v[small]), np.log(loss_std[small]), 1)[0]
grad_slope = np.polyfit(np.log(sig_v[small]), np.log(grad_std[small]), 1)[0]

# %% [markdown]
# Each standard deviation is estimated from 256 draws, so it carries a relative error of about
# $1/\sqrt{2\cdot 256} \approx 4\%$: two significant digits.

# %%
# NBVAL_CHECK_OUTPUT
print("  sigma  std(loss)  1/(sqrt(n) sigma^2)  std(grad)  |mean grad|/std(grad)  std(sigma^2 loss)")
for s, ls, gs, ws, snr in variance_rows:
    print(f"{s:7.4f} {ls:10.2g} {1 / (np.sqrt(N_SAMPLES) * s**2):20.2g} {gs:10.2g} {snr:22.2g} {ws:18.2g}")
print(f"log-log slopes for sigma <= {VARIANCE_FIT_MAX}: loss std {loss_slope:.2f} (theory -2), "
      f"gradient std {grad_slope:.2f} (theory -1)")
assert abs(loss_slope + 2) < 0.15 and abs(grad_slope + 1) < 0.2
assert abs(loss_std[0] * np.sqrt(N_SAMPLES) * sig_v[0] ** 2 - 1) < 0.2
assert grad_snr[0] < 2 / np.sqrt(VARIANCE_DRAWS), "at the smallest sigma the mean gradient should drown in noise"
print(f"at sigma = {sigma_max:g}: std of the loss {loss_std[-1]:.2g} for the network, {kde_std_max:.2g} for the KDE "
      f"score (the exact minimiser at that level)")
assert loss_std[-1] > 5 * kde_std_max, "at the largest sigma the network's own errors should dominate the loss noise"

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.loglog(sig_v, loss_std, "o-", label="std of the DSM loss")
ax.loglog(sig_v, grad_std, "s-", label="std of its gradient (all parameters)")
ax.loglog(sig_v, weighted_std, "^-", label=r"std of $\sigma^2\times$ loss")
ax.loglog(sig_v, 1 / (np.sqrt(N_SAMPLES) * sig_v**2), "k:", label=r"$1/(\sqrt{n}\,\sigma^2)$")
ax.set(xlabel=r"noise level $\sigma$", ylabel="standard deviation over noise draws",
       title=r"DSM noise against $\sigma$")
ax.legend()
plt.show()

# %% [markdown]
# The measured loss noise follows $1/(\sqrt n\,\sigma^2)$ closely at small $\sigma$ (the first row is within 20% of it,
# and the fitted slope is printed next to the theory), and the gradient noise grows like $1/\sigma$. At $\sigma = 0.01$
# a DSM step is mostly noise: the gradient averaged over all 256 draws is shorter than the spread of a single draw by
# the factor in the first row of the column |mean grad|/std(grad), about the $1/\sqrt{256} \approx 0.06$ that averaging
# pure noise leaves (asserted to be below twice that). At $\sigma = 1$ the network's loss noise rises again, while that
# of the KDE score at $\sigma = 1$ (the exact minimiser at that level, printed last) stays far below it: the network was
# trained at $\sigma = 0.3$, and points pushed that far from the data meet its own, larger, errors. Multiplying the loss
# by $\sigma^2$ makes its noise nearly independent of $\sigma$ wherever the network is accurate (the column std(sigma^2
# loss), up to $\sigma = 0.3$), which is exactly the weighting $\lambda(\sigma) = \sigma^2$ of Song and Ermon [2] that
# notebook 05 uses to train one network at many noise levels at once: large levels for reliable scores far from the
# data, small levels for detail, and a sampler that walks down from one to the other.
#
# ## 6. Interactive: the bandwidth
#
# Ghyselincks's post [5] animated the KDE over the bandwidth; here it is a slider. Left: the truth blurred at the
# same bandwidth, $p_h$, with its score; middle: the KDE $q_h$ with its score; right: the Fisher divergences of
# section 3 with the current $h$ marked. Everything is a closed form, so a move answers at once.

# %%
def draw_bandwidth(h, *, points, truth, table, window, n_grid, n_arrows):
    """KDE of `points` at bandwidth h next to the truth blurred at h, and the table's Fisher divergences."""
    row = next(r for r in table if r["h"] == h)
    q, p_h = sl.data.kde(points, h), truth.perturbed(h)
    hs = [r["h"] for r in table]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    show_density(axes[0], p_h.log_prob, f"truth blurred at h = {h}", window=window, n=n_grid)
    sl.plotting.plot_score_field(axes[0], p_h.score, window, window, n=n_arrows, color="C3")
    show_density(axes[1], q.log_prob, f"KDE at h = {h}", window=window, n=n_grid, points=np.asarray(points))
    sl.plotting.plot_score_field(axes[1], q.score, window, window, n=n_arrows, color="C3")
    axes[2].loglog(hs, [r["vs_perturbed"][0] for r in table], "o-", ms=3, label=r"$D_F(q_h\,\|\,p_h)$")
    axes[2].loglog(hs, [r["vs_truth"][0] for r in table], "s-", ms=3, label=r"$D_F(q_h\,\|\,p)$")
    axes[2].axvline(h, color="k", lw=1)
    axes[2].xaxis.set_minor_locator(NullLocator())  # fewer ticks to lay out: a faster redraw
    axes[2].yaxis.set_minor_locator(NullLocator())
    for axis in (axes[2].xaxis, axes[2].yaxis):
        axis.set_major_formatter(StrMethodFormatter("{x:g}"))  # 0.1 and 100 as plain numbers: no mathtext to parse
    axes[2].set(xlabel="bandwidth $h$", title="Fisher divergences", xticks=[0.05, 0.1, 0.2, 0.5, 1, 2])
    axes[2].legend()
    print(f"h = {h}: D_F(q_h || p_h) = {row['vs_perturbed']}, D_F(q_h || p) = {row['vs_truth']}, "
          f"held-out log-likelihood {row['heldout_ll']}")


draw = functools.partial(draw_bandwidth, points=x_data, truth=mixture, table=table, window=WINDOW, n_grid=GRID_SIZE,
                         n_arrows=QUIVER_SIZE)
draw(best_ll["h"])
plt.show()

# %%
sl.widgets.interactive_figure(
    draw, h=widgets.SelectionSlider(options=[r["h"] for r in table], value=best_ll["h"], description="h"),
)

# %% [markdown]
# The slider comes alive when the cells above have run in a live kernel; the stored notebook shows the figure for
# the default bandwidth above it.
#
# ## Summary
#
# - The KDE of $n$ points is a mixture of $n$ Gaussians; its score is a softmax-weighted pull towards the points,
#   exact and finite everywhere when computed with log-sum-exp. Taking the log of the density itself fails wherever
#   it underflows: in float32 on a CPU, farther than the printed radius $r^\star$ from every sample.
# - Small bandwidths give a spiky, unreliable score (its error approaches $h^{-4}$, the printed slope); large ones
#   match only a blurred truth. Both the score error against the truth and the held-out likelihood pick a bandwidth
#   in between (the two best bandwidths printed in section 3).
# - DSM's loss is a regression onto $-\mathbf z/\sigma$; on a finite sample its exact minimiser is the KDE score at
#   bandwidth $\sigma$, and $L_{\text{DSM}}(s) - L_{\text{DSM}}(s^\star) = D_F(s\,\|\,q_\sigma)$ (checked within three
#   standard errors of the cross term that separates them, printed beside it). The trained network ends much closer to
#   the KDE score than to the perturbed truth; early in training its smoothness keeps it closer to the truth than the
#   KDE is (the relative divergences of section 4).
# - The standard deviation of the DSM loss grows like $1/\sigma^2$ and that of its gradient like $1/\sigma$ (the
#   fitted slopes of section 5), so a single tiny $\sigma$ is impractical. Weighting by $\sigma^2$ and training many
#   levels at once is the way out (notebook 05).
#
# ## Exercises
#
# 1. Prove that the DSM minimiser is the KDE score without conditioning on $\tilde{\mathbf x}$ (no Bayes' rule, no
#    posterior weights): expand the square in $L_{\text{DSM}}(s)$, write the cross term as an integral over
#    $\tilde{\mathbf x}$, and use $\frac{\tilde{\mathbf x} - \mathbf x_i}{\sigma^2}\,\mathcal N(\tilde{\mathbf x};
#    \mathbf x_i, \sigma^2 I) = -\nabla_{\tilde{\mathbf x}}\mathcal N(\tilde{\mathbf x}; \mathbf x_i, \sigma^2 I)$.
# 2. Repeat section 3 with 50 and with 2000 samples. How does the bandwidth with the best held-out likelihood move?
# 3. Tweedie's formula [4] says $\mathbb E[\mathbf x \mid \tilde{\mathbf x}] = \tilde{\mathbf x} +
#    \sigma^2\nabla\log q_\sigma(\tilde{\mathbf x})$. What does this denoiser return for the KDE score, and for the
#    trained network?
#
# <!-- BEGIN SOLUTION -->
# <details><summary>Solution 1</summary>
#
# $\tfrac12|s + \mathbf z/\sigma|^2 = \tfrac12|s|^2 + s\cdot\mathbf z/\sigma + \tfrac12|\mathbf z|^2/\sigma^2$, all
# at $\tilde{\mathbf x} = \mathbf x_i + \sigma\mathbf z$. The last term does not depend on $s$, and the first
# averages to $\tfrac12\mathbb E_{q_\sigma}|s|^2$ because $\tilde{\mathbf x}$ has density $q_\sigma$. In the middle
# one, $\mathbf z/\sigma = (\tilde{\mathbf x} - \mathbf x_i)/\sigma^2$; with $\mathbf x_i$ uniform on the sample,
#
# $$ \mathbb E[s\cdot\mathbf z/\sigma] = \frac1n\sum_i\int s(\tilde{\mathbf x})\cdot
#    \frac{\tilde{\mathbf x} - \mathbf x_i}{\sigma^2}\,\mathcal N(\tilde{\mathbf x}; \mathbf x_i, \sigma^2 I)\,
#    d\tilde{\mathbf x} = -\int s\cdot\nabla q_\sigma\, d\tilde{\mathbf x}
#    = -\mathbb E_{q_\sigma}[s\cdot\nabla\log q_\sigma], $$
#
# using the hint and $\frac1n\sum_i\mathcal N(\cdot\,; \mathbf x_i, \sigma^2 I) = q_\sigma$, then $\nabla q_\sigma =
# q_\sigma\nabla\log q_\sigma$. So the loss is $\tfrac12\mathbb E_{q_\sigma}|s|^2 - \mathbb E_{q_\sigma}[s\cdot\nabla
# \log q_\sigma] + \text{const} = \tfrac12\mathbb E_{q_\sigma}|s - \nabla\log q_\sigma|^2 + \text{const}$, minimal
# at $s = \nabla\log q_\sigma$. This is Vincent's result [1], stated there for this Parzen density $q_\sigma$ of the
# sample; the same steps with $p$ in place of the sample give the population version.
# </details>
#
# <details><summary>Solution 2</summary>
#
# Call `bandwidth_table(mixture.sample(key, n), BANDWIDTHS, mixture, x_fresh, key_pert)` for each size, with a key
# derived from the root key. Sparser points need wider kernels to cover the gaps between them, so the best bandwidth
# should shrink as $n$ grows. For a $d$-dimensional Gaussian the classical rule (Silverman's [3]) is $h \propto
# n^{-1/(d+4)}$, here $n^{-1/6}$: a factor 40 in $n$ moves $h$ by a factor $40^{1/6} \approx 1.85$, about two steps
# of the bandwidth grid (a factor 1.36 each), and the factor 4 from 200 down to 50 by only $4^{1/6} \approx 1.26$,
# less than one step. Near its best the held-out likelihood is flat (section 3's table), so single samples of one
# size may land on different grid points: average the likelihood curves of several samples of each size before
# taking the best.
#
# The first cell below does that for the held-out likelihood alone (the one column that decides), with 4 samples of
# each size, written out with log-sum-exp to be fast on 2000 points (and checked against section 3's column). It
# prints the best grid bandwidth of each sample and of the averaged curve, and a finer estimate, the maximum of a
# parabola in $\log h$ through the averaged curve's best grid point and its two neighbours. The finer estimates
# shrink at every step from 50 to 200 to 2000 points (asserted), and the ratio between 50 and 2000 points is
# printed beside Silverman's 1.85: within a factor 1.3 of it (asserted), although the data are a mixture, not one
# Gaussian. The best grid bandwidths of the single samples show how much one sample can mislead.
# </details>
#
# <details><summary>Solution 3</summary>
#
# For the KDE score, $\tilde{\mathbf x} + \sigma^2\sum_i w_i(\mathbf x_i - \tilde{\mathbf x})/\sigma^2 = \sum_i
# w_i(\tilde{\mathbf x})\,\mathbf x_i$: a softmax-weighted average of the training points, which snaps to the nearest
# training point when $\sigma$ is small. That is memorisation in its purest form. The trained network converged
# close to the KDE score (section 4), so its denoiser should do nearly the same: pull noisy points back towards
# the training points rather than towards the smooth truth. The second cell below measures both: at a small
# $\sigma$, how close the KDE's denoised points come to a training point; at $\sigma = 0.3$, how far the network's
# denoised points are from the KDE's and from those of the perturbed truth's score. Notebook 06 uses this formula as
# the final denoising step of its sampler.
# </details>
# <!-- END SOLUTION -->

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
# Solution 2: the best bandwidth for the held-out likelihood, at three sample sizes.
@jax.jit
def heldout_curve(points, x, hs):
    """E log q_h over the points x, for the KDE q_h of `points` at every bandwidth in hs (log-sum-exp)."""
    n, d = points.shape
    sq = jnp.sum((x[:, None, :] - points[None]) ** 2, axis=2)
    return jax.lax.map(lambda h: jnp.mean(jax.nn.logsumexp(-sq / (2 * h**2), axis=1)) - jnp.log(n)
                       - 0.5 * d * jnp.log(2 * jnp.pi * h**2), hs)


np.testing.assert_allclose(heldout_curve(x_data, x_fresh, jnp.asarray(BANDWIDTHS)), heldout_ll, rtol=1e-4)
best_h = {}
for n in SAMPLE_SIZES:
    keys = jax.random.split(jax.random.fold_in(key_sizes, n), N_REPEATS)
    curves = np.array([heldout_curve(mixture.sample(k, n), x_fresh, jnp.asarray(BANDWIDTHS)) for k in keys])
    mean_curve = curves.mean(axis=0)
    i = int(np.argmax(mean_curve))
    a, b, _ = np.polyfit(np.log(BANDWIDTHS[i - 1:i + 2]), mean_curve[i - 1:i + 2], 2)
    best_h[n] = float(np.exp(-b / (2 * a)))
    print(f"n = {n:4d}: best h per sample {BANDWIDTHS[np.argmax(curves, axis=1)].tolist()}, of the averaged curve "
          f"{BANDWIDTHS[i]}, parabola {best_h[n]:.2f}")
small_n, mid_n, large_n = SAMPLE_SIZES
ratio_h, silverman = best_h[small_n] / best_h[large_n], (large_n / small_n) ** (1 / 6)
print(f"best h at n = {small_n} over best h at n = {large_n}: {ratio_h:.2f}; Silverman's rule {silverman:.2f}")
assert best_h[small_n] > best_h[mid_n] > best_h[large_n], "the best bandwidth shrinks as the sample grows"
assert abs(np.log(ratio_h / silverman)) < np.log(1.3)

# %% tags=["solution"]
# NBVAL_CHECK_OUTPUT
# Solution 3: Tweedie's denoiser x~ + sigma^2 s(x~).
def tweedie(score, x_tilde, sigma):
    return x_tilde + sigma**2 * score(x_tilde)


def median_distance(a, b):
    return float(np.median(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1)))


x_noisy_small = x_data + SIGMA_SMALL * jax.random.normal(key_small, x_data.shape)
denoised_small = tweedie(sl.data.kde(x_data, SIGMA_SMALL).score, x_noisy_small, SIGMA_SMALL)
before, after = (float(np.median(cdist(np.asarray(x), np.asarray(x_data)).min(axis=1)))
                 for x in (x_noisy_small, denoised_small))
print(f"KDE denoiser at sigma = {SIGMA_SMALL}: median distance to the nearest training point {before:.2f} before, "
      f"{after:.2f} after")
denoised = {name: tweedie(fn, x_noisy, SIGMA) for name, fn in
            (("KDE", kde_sigma.score), ("network", score_fn), ("perturbed truth", p_sigma.score))}
net_to_kde = median_distance(denoised["network"], denoised["KDE"])
net_to_truth = median_distance(denoised["network"], denoised["perturbed truth"])
print(f"at sigma = {SIGMA}, median distance from the network's denoised point to the KDE's {net_to_kde:.3f}, "
      f"to the perturbed truth's {net_to_truth:.3f}")
assert after < 0.3 * before, "at small sigma the KDE denoiser moves most of the way to a training point"
assert net_to_kde < 0.5 * net_to_truth, "the network's denoiser follows the KDE's, not the truth's"

# %% [markdown]
# ### Coding exercises
#
# Each function below has a docstring and a hint; replace the body between the markers with your code, run the cell,
# then run the check after it. The check (`sl.exercises.check_...`) compares your function with scorelib on samples
# and points you have not seen, in two and three dimensions, and says what is wrong: a wrong sign, a missing
# constant, non-finite values, the input where it is furthest off.
#
# 4. Write the KDE's log density, `kde_log_prob(points, h, x)`, normalised and finite everywhere. Section 2 computes
#    the KDE's *score* stably with a softmax; the log density needs its companion, log-sum-exp
#    (`jax.nn.logsumexp`). The check includes points far from every sample, where section 2's naive
#    $\log\sum\exp$ returns $-\infty$.
# 5. Write Tweedie's denoiser for the KDE at bandwidth $\sigma$, `kde_denoiser(points, sigma, x_tilde)`: the
#    posterior mean $\mathbb E[\mathbf x \mid \tilde{\mathbf x}] = \tilde{\mathbf x} + \sigma^2\nabla\log
#    q_\sigma(\tilde{\mathbf x})$ of Exercise 3, when $\mathbf x$ is a sample point chosen uniformly and
#    $\tilde{\mathbf x} = \mathbf x + \sigma\mathbf z$. Either with `jax.grad` of your `kde_log_prob`, or in the
#    form that Exercise 3 derives.

# %%
def kde_log_prob(points, h, x):
    """Log density of the KDE (1/m) sum_i N(points_i, h^2 I) at the points x: points (m, d), x (n, d) -> (n,)."""
    # Hint: the KDE is the average of m Gaussians N(x_i, h^2 I) (section 2); average them in log space with
    # jax.scipy.special.logsumexp, which stays finite where every kernel underflows.
    ### BEGIN SOLUTION
    m, d = points.shape
    sq = jnp.sum((x[:, None, :] - points[None]) ** 2, axis=2)  # (n, m) squared distances
    return jax.nn.logsumexp(-sq / (2 * h**2), axis=1) - jnp.log(m) - 0.5 * d * jnp.log(2 * jnp.pi * h**2)
    ### END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
sl.exercises.check_kde_log_prob(kde_log_prob)


# %%
def kde_denoiser(points, sigma, x_tilde):
    """Tweedie's E[x | x~] for x uniform on the points (m, d) and x~ = x + sigma z: x_tilde (n, d) -> (n, d)."""
    # Hint: x~ + sigma^2 times the score of the KDE with bandwidth sigma (jax.grad of your kde_log_prob for one
    # point, mapped over the rows with jax.vmap); or the average of the points weighted by the posterior
    # probabilities w_i(x~) (a softmax over the points, section 2).
    ### BEGIN SOLUTION
    sq = jnp.sum((x_tilde[:, None, :] - points[None]) ** 2, axis=2)  # (n, m)
    return jax.nn.softmax(-sq / (2 * sigma**2), axis=1) @ points
    ### END SOLUTION


# %%
# NBVAL_CHECK_OUTPUT
sl.exercises.check_kde_denoiser(kde_denoiser)

# %% [markdown]
# ## References
#
# 1. P. Vincent (2011). A connection between score matching and denoising autoencoders. *Neural Computation* 23(7),
#    1661-1674. [doi:10.1162/NECO_a_00142](https://doi.org/10.1162/NECO_a_00142)
# 2. Y. Song, S. Ermon (2019). Generative modeling by estimating gradients of the data distribution. *NeurIPS 32*.
#    [arXiv:1907.05600](https://arxiv.org/abs/1907.05600)
# 3. B. W. Silverman (1986). *Density Estimation for Statistics and Data Analysis*. Chapman & Hall.
# 4. B. Efron (2011). Tweedie's formula and selection bias. *JASA* 106(496), 1602-1614.
#    [doi:10.1198/jasa.2011.tm11181](https://doi.org/10.1198/jasa.2011.tm11181)
# 5. S. Ghyselincks (2024). Blog post on score matching, denoising autoencoders and kernel density estimates
#    (the three-Gaussian mixture, 200 samples, KDE bandwidths), published 22 May 2024.

# %%
print(f"training time {train_seconds:.1f} s; notebook run time {time.perf_counter() - notebook_start:.0f} s")
