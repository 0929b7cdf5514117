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
# density estimate (KDE), so its bandwidth decides what we learn.
#
# In this notebook you will:
#
# - write the KDE of a sample as a Gaussian mixture and compute its score exactly and stably with log-sum-exp, and
#   see the NaNs that a naive $\log\sum\exp$ produces away from the data;
# - measure the bandwidth trade-off: Fisher divergences from the KDE score to the noise-perturbed truth and to the
#   truth itself, and the held-out log-likelihood, over a range of bandwidths $h$;
# - derive the DSM loss and prove that on a finite sample its minimiser is exactly the KDE score at bandwidth
#   $\sigma$, then watch a trained network approach it;
# - measure how the variance of the DSM loss and its gradient grows like $1/\sigma^2$ and $1/\sigma$ as the noise
#   shrinks, which is why notebook 05 uses many noise levels;
# - move a bandwidth slider and watch the KDE and its score change.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import scorelib as sl

plt.rcParams.update({"figure.dpi": 72, "figure.figsize": (9, 3.4), "axes.grid": True, "grid.alpha": 0.3})
notebook_start = time.perf_counter()

# %% [markdown]
# ## Hyperparameters

# %%
SEED = 0
N_SAMPLES = 200  # the size of the seed post's sample
N_FRESH = 10_000  # fresh samples of the truth, for expectations and held-out likelihood
BANDWIDTHS = np.round(np.geomspace(0.05, 2.0, 13), 3)  # the grid of KDE bandwidths h
WINDOW = (-3.5, 3.5)

SIGMA = 0.3  # DSM noise level (a bandwidth near the best held-out likelihood, see section 3)
SIZES = (2, 128, 128, 128, 2)  # MLP with softplus activations
STEPS = 5000
BATCH_SIZE = 500  # each step sees every training point about 2.5 times, each with fresh noise
LR = optax.cosine_decay_schedule(3e-3, STEPS)
SNAPSHOT_EVERY = 500

VARIANCE_SIGMAS = np.round(np.geomspace(0.01, 1.0, 9), 4)  # noise levels for the variance study
VARIANCE_DRAWS = 256  # independent noise draws of the full-sample DSM loss at each level

key = jax.random.key(SEED)
key_data, key_fresh, key_pert, key_init, key_train, key_noisy, key_var = jax.random.split(key, 7)

# %% [markdown]
# ## 1. Ground truth: a mixture of three Gaussians
#
# The seed post's distribution: means $(-1,-1)$, $(1,1)$, $(1,-1)$, covariances
# $\begin{psmallmatrix}0.5 & 0.3\\ 0.3 & 0.5\end{psmallmatrix}$ for the first two and $0.5I$ for the third, weights
# 0.2, 0.2, 0.6. `sl.data.GaussianMixture` gives its density and its exact score. The seed drew its 200 points by
# rejection inside the box $[-3, 3]^2$, which silently cuts off the tails; sampling the mixture directly does not.

# %%
mixture = sl.data.GaussianMixture(
    means=[[-1, -1], [1, 1], [1, -1]],
    covs=[[[0.5, 0.3], [0.3, 0.5]], [[0.5, 0.3], [0.3, 0.5]], [[0.5, 0.0], [0.0, 0.5]]],
    weights=[0.2, 0.2, 0.6],
)
x_data = mixture.sample(key_data, N_SAMPLES)
x_fresh = mixture.sample(key_fresh, N_FRESH)
X, Y, grid = sl.plotting.grid_2d(WINDOW, WINDOW, 80)


def show_density(ax, log_prob_fn, title, points=None):
    density = np.exp(np.asarray(log_prob_fn(grid))).reshape(X.shape)
    ax.imshow(density, origin="lower", extent=(*WINDOW, *WINDOW), cmap="Blues", aspect="equal")
    if points is not None:
        ax.scatter(points[:, 0], points[:, 1], s=4, color="k", alpha=0.6)
    ax.set(xlim=WINDOW, ylim=WINDOW, title=title, xlabel="$x_1$", ylabel="$x_2$")
    ax.grid(False)
    return ax


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.6))
show_density(ax1, mixture.log_prob, f"true density and {N_SAMPLES} samples", np.asarray(x_data))
show_density(ax2, mixture.log_prob, "true score (arrow length log(1+|s|))")
sl.plotting.plot_score_field(ax2, mixture.score, WINDOW, WINDOW, n=19, color="C3")
plt.tight_layout()
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
# the largest exponent first (log-sum-exp). The seed post instead took the log of a density evaluated on a grid and
# differentiated it with finite differences. Where the density underflows to zero, $\log 0 = -\infty$, and the
# gradient is $\infty - \infty$: the holes and streaks in its figures. Below, the same thing with automatic
# differentiation of the naive formula, at $h = 0.1$ on a grid reaching 3.5 from the origin.

# %%
def kde_score_inline(points, h, x):
    """Score of the KDE written out: a softmax of the kernel exponents weights the pulls (x_i - x) / h^2."""
    sq = jnp.sum((x[:, None, :] - points[None]) ** 2, axis=2)
    w = jax.nn.softmax(-sq / (2 * h**2), axis=1)
    return jnp.einsum("nm,nmd->nd", w, points[None] - x[:, None, :]) / h**2


def naive_log_kde(points, h, x):
    sq = jnp.sum((x - points) ** 2, axis=1)
    return jnp.log(jnp.mean(jnp.exp(-sq / (2 * h**2))) / (2 * jnp.pi * h**2))


h_demo = 0.1
kde_demo = sl.data.kde(x_data, h_demo)
np.testing.assert_allclose(kde_score_inline(x_data, h_demo, grid), kde_demo.score(grid), rtol=1e-4, atol=1e-3)

# %%
# NBVAL_CHECK_OUTPUT
naive_scores = jax.vmap(jax.grad(lambda p: naive_log_kde(x_data, h_demo, p)))(grid)
naive_bad = ~np.all(np.isfinite(np.asarray(naive_scores)), axis=1)
stable_bad = ~np.all(np.isfinite(np.asarray(kde_demo.score(grid))), axis=1)
print(f"h = {h_demo}: naive score non-finite at {naive_bad.sum()} of {len(grid)} grid points "
      f"({naive_bad.mean():.1%}); log-sum-exp score non-finite at {stable_bad.sum()}")
assert naive_bad.sum() > 100 and stable_bad.sum() == 0

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, scores, title in ((ax1, naive_scores, "naive log of the KDE"), (ax2, kde_demo.score(grid), "log-sum-exp")):
    s = np.asarray(scores)
    ax.imshow(np.where(np.isfinite(s).all(axis=1), 0.0, 1.0).reshape(X.shape), origin="lower",
              extent=(*WINDOW, *WINDOW), cmap="Reds", vmin=0, vmax=1.5)
    ax.scatter(x_data[:, 0], x_data[:, 1], s=4, color="k")
    ax.set(title=f"{title}: red = NaN score (h = {h_demo})", xlabel="$x_1$", ylabel="$x_2$")
    ax.grid(False)
plt.tight_layout()
plt.show()

# %% [markdown]
# In single precision $e^{-u}$ underflows for $u > 103$, i.e. more than $\sqrt{206}\,h \approx 1.4$ away from every
# point at $h = 0.1$. From now on every KDE is an `sl.data.kde` mixture, exact everywhere.
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

# %%
def bandwidth_table(points, bandwidths):
    rows = []
    for h in bandwidths:
        q = sl.data.kde(points, float(h))
        p_h = mixture.perturbed(float(h))
        x_h = p_h.sample(key_pert, N_FRESH)
        rows.append(dict(
            h=float(h),
            vs_perturbed=sl.metrics.fisher_divergence(q.score, p_h.score, x_h),
            vs_truth=sl.metrics.fisher_divergence(q.score, mixture.score, x_fresh),
            heldout_ll=float(jnp.mean(q.log_prob(x_fresh))),
        ))
    return rows


table = bandwidth_table(x_data, BANDWIDTHS)
best_ll = max(table, key=lambda r: r["heldout_ll"])
best_fisher = min(table, key=lambda r: r["vs_truth"])
C_truth = 0.5 * float(jnp.mean(jnp.sum(mixture.score(x_fresh) ** 2, axis=1)))  # D_F of the zero field

# %%
# NBVAL_CHECK_OUTPUT
print("     h   D_F(q_h||p_h)   D_F(q_h||p)   held-out log-lik")
for r in table:
    print(f"{r['h']:6.3f} {r['vs_perturbed']:15.4g} {r['vs_truth']:13.4g} {r['heldout_ll']:18.3f}")
print(f"best held-out likelihood at h = {best_ll['h']}; smallest D_F to the truth at h = {best_fisher['h']} "
      f"({best_fisher['vs_truth']:.3f}, zero field {C_truth:.3f})")
vs_perturbed = np.array([r["vs_perturbed"] for r in table])
assert np.all(np.diff(vs_perturbed) < 0), "the KDE approaches the perturbed truth as h grows"
assert 0.2 < best_ll["h"] < 0.6 and 0.2 < best_fisher["h"] < 0.8
assert best_fisher["vs_truth"] < 0.5 * C_truth

# %%
hs = np.array([r["h"] for r in table])
fig, (ax1, ax2) = plt.subplots(1, 2)
ax1.loglog(hs, vs_perturbed, "o-", label=r"$D_F(q_h\,\|\,p_h)$, vs perturbed truth")
ax1.loglog(hs, [r["vs_truth"] for r in table], "s-", label=r"$D_F(q_h\,\|\,p)$, vs clean truth")
ax1.axhline(C_truth, color="k", ls=":", lw=1, label="zero field vs clean truth")
ax1.set(xlabel="bandwidth $h$", ylabel="Fisher divergence", title="score error vs bandwidth")
ax1.legend(fontsize=8)
ax2.semilogx(hs, [r["heldout_ll"] for r in table], "o-", color="C2")
ax2.axvline(best_ll["h"], color="C2", ls="--", lw=1, label=f"best h = {best_ll['h']}")
ax2.set(xlabel="bandwidth $h$", ylabel=r"$E_p \log q_h$", title="held-out log-likelihood", ylim=(-6, -2.5))
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Small bandwidths make the KDE a set of spikes: its score points to the nearest sample with strength $1/h^2$, so
# its error against any smooth density explodes like $h^{-4}$ (both curves on the left). Large bandwidths blur
# everything towards one broad Gaussian: the KDE then matches the equally blurred truth $p_h$ ever better, but it
# is no longer a model of $p$, and the error against the clean truth grows again. The best compromise for the score
# lies close to the likelihood's best bandwidth, about where the sample's spacing and the structure of $p$ meet.
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
# Expanding the square around $s^\star$ gives the identity behind it (Vincent 2011):
# $L_{\text{DSM}}(s) = D_F(s \,\|\, q_\sigma) + L_{\text{DSM}}(s^\star)$, with $D_F = \tfrac12\mathbb E_{q_\sigma}|s -
# \nabla\log q_\sigma|^2$. A flexible enough network trained long enough with DSM on $n$ points therefore converges to
# the KDE score, the spiky one for small $\sigma$, not to the score of $p_\sigma$. Training with fresh data each step
# (as in notebooks 02–03) would instead target $p_\sigma$ itself.
#
# We train on the 200 points with `sl.losses.dsm_loss`, a fresh noise draw for every point in every batch, and keep
# snapshots to follow the distance to both candidates during training.

# %%
def mlp_score(params):
    return lambda x: sl.nets.mlp_apply(params, x)


def dsm_objective(params, batch, key):
    return sl.losses.dsm_loss(mlp_score(params), batch, key, SIGMA)


def resample(key, n):  # minibatches drawn with replacement from the fixed sample
    return x_data[jax.random.randint(key, (n,), 0, N_SAMPLES)]


start = time.perf_counter()
params, losses, snapshots = sl.train.fit(dsm_objective, sl.nets.mlp_init(key_init, SIZES), key=key_train,
                                         data=resample, steps=STEPS, batch_size=BATCH_SIZE,
                                         optimizer=optax.adam(LR), snapshot_every=SNAPSHOT_EVERY)
train_seconds = time.perf_counter() - start
score_fn = mlp_score(params)

# %% [markdown]
# Both distances are measured under $q_\sigma$, on 100 noisy copies of every training point, and reported relative to
# $\tfrac12\mathbb E_{q_\sigma}|\nabla\log q_\sigma|^2$ (the divergence of the zero field).

# %%
kde_sigma = sl.data.kde(x_data, SIGMA)
p_sigma = mixture.perturbed(SIGMA)
z_noisy = jax.random.normal(key_noisy, (100, N_SAMPLES, 2))
x_noisy = (x_data[None] + SIGMA * z_noisy).reshape(-1, 2)  # exact samples of q_sigma
scale = 0.5 * float(jnp.mean(jnp.sum(kde_sigma.score(x_noisy) ** 2, axis=1)))


def relative_fisher(fn, reference):
    return sl.metrics.fisher_divergence(fn, reference, x_noisy) / scale


history = [(step, relative_fisher(mlp_score(p), kde_sigma.score), relative_fisher(mlp_score(p), p_sigma.score))
           for step, p in snapshots]

# %%
# NBVAL_CHECK_OUTPUT
net_vs_kde, net_vs_truth = history[-1][1], history[-1][2]
kde_vs_truth = relative_fisher(kde_sigma.score, p_sigma.score)
closest = min(history, key=lambda r: r[2])
print(f"after {STEPS} steps: network vs KDE score {net_vs_kde:.3f}, network vs perturbed truth {net_vs_truth:.3f}, "
      f"KDE vs perturbed truth {kde_vs_truth:.3f} (relative Fisher divergences under q_sigma)")
print(f"closest to the perturbed truth at step {closest[0]}: {closest[2]:.3f} (vs KDE {closest[1]:.3f})")
assert net_vs_kde < 0.1 and net_vs_kde < kde_vs_truth / 3, "the DSM network should approach the KDE score"
assert closest[2] < kde_vs_truth, "early in training the network is smoother than the KDE"

# %% [markdown]
# Check the identity $L_{\text{DSM}}(s) - L_{\text{DSM}}(s^\star) = D_F(s\,\|\,q_\sigma)$ on the same noise draws:
# the two sides differ by a zero-mean cross term, so they must agree within its standard error.

# %%
# NBVAL_CHECK_OUTPUT
def dsm_per_point(fn):
    return 0.5 * jnp.sum((fn(x_noisy) + z_noisy.reshape(-1, 2) / SIGMA) ** 2, axis=1)


gap_per_point = dsm_per_point(score_fn) - dsm_per_point(kde_sigma.score)
fisher_net = sl.metrics.fisher_divergence(score_fn, kde_sigma.score, x_noisy)
gap_se = float(jnp.std(gap_per_point)) / np.sqrt(len(x_noisy))
print(f"DSM loss of the network {float(jnp.mean(dsm_per_point(score_fn))):.3f}, "
      f"of the KDE score {float(jnp.mean(dsm_per_point(kde_sigma.score))):.3f}")
print(f"gap {float(jnp.mean(gap_per_point)):.4f} vs D_F(net || q_sigma) {fisher_net:.4f} (standard error {gap_se:.4f})")
assert abs(float(jnp.mean(gap_per_point)) - fisher_net) < 4 * gap_se

# %%
steps_hist = [r[0] for r in history]
fig, (ax1, ax2) = plt.subplots(1, 2)
sl.plotting.plot_loss(ax1, losses)
ax1.set(title=f"DSM loss, sigma = {SIGMA}", ylim=(float(np.percentile(losses, 1)) - 0.2, float(losses[:200].max())))
ax2.plot(steps_hist, [r[1] for r in history], "o-", label="network vs KDE score")
ax2.plot(steps_hist, [r[2] for r in history], "s-", label=r"network vs perturbed truth $p_\sigma$")
ax2.axhline(kde_vs_truth, color="k", ls=":", label="KDE vs perturbed truth")
ax2.set(xlabel="step", ylabel="relative Fisher divergence", yscale="log", title="what the network converges to")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

fig, axes = plt.subplots(1, 3, figsize=(10, 3.5))
for ax, fn, title in ((axes[0], p_sigma.score, r"perturbed truth $p_\sigma$"), (axes[1], kde_sigma.score, "KDE score"),
                      (axes[2], score_fn, "DSM network")):
    ax.scatter(x_data[:, 0], x_data[:, 1], s=3, color="k", alpha=0.5)
    sl.plotting.plot_score_field(ax, fn, WINDOW, WINDOW, n=19, title=title)
plt.tight_layout()
plt.show()

# %% [markdown]
# Early in training the network is a smooth function and lands *between* the KDE and the perturbed truth, closer to
# the truth than the KDE itself: the network's smoothness acts as a regulariser. As training continues, it fits the
# bumps of the KDE around individual points, and its distance to the truth grows back towards the KDE's. With a
# finite sample, DSM is a smoothed KDE of the score; more data (or a larger $\sigma$) is what brings $q_\sigma$ closer
# to $p_\sigma$.
#
# ## 5. The cost of small noise: variance
#
# Why not take $\sigma$ tiny, so that $p_\sigma \approx p$? The target $-\mathbf z/\sigma$ has size $\sqrt d/\sigma$,
# so the per-point loss is dominated by $|\mathbf z|^2/(2\sigma^2)$, whose variance is $\operatorname{Var}(|\mathbf
# z|^2)/(4\sigma^4) = 1/\sigma^4$ in two dimensions. A mean over $n = 200$ points then has standard deviation about
# $1/(\sqrt{200}\,\sigma^2)$. The gradient's noisy part, $\partial_\theta s^\top\mathbf z/\sigma$, grows like $1/\sigma$.
# Below, the full-sample loss and gradient of the trained network, over 256 noise draws at each $\sigma$.

# %%
@jax.jit
def loss_and_grad_draws(params, sigma, keys):
    return jax.vmap(lambda k: jax.value_and_grad(dsm_objective_at)(params, sigma, k))(keys)


def dsm_objective_at(params, sigma, key):
    return sl.losses.dsm_loss(mlp_score(params), x_data, key, sigma)


variance_rows = []
for i, sigma in enumerate(VARIANCE_SIGMAS):
    vals, grads = loss_and_grad_draws(params, float(sigma), jax.random.split(jax.random.fold_in(key_var, i),
                                                                             VARIANCE_DRAWS))
    grad_std = np.sqrt(sum(float(jnp.sum(jnp.var(g, axis=0))) for g in jax.tree.leaves(grads)))
    variance_rows.append((float(sigma), float(jnp.std(vals)), grad_std, float(jnp.std(sigma**2 * vals))))
sig_v, loss_std, grad_std, weighted_std = map(np.array, zip(*variance_rows, strict=True))
small = sig_v <= 0.1
loss_slope = np.polyfit(np.log(sig_v[small]), np.log(loss_std[small]), 1)[0]
grad_slope = np.polyfit(np.log(sig_v[small]), np.log(grad_std[small]), 1)[0]

# %%
# NBVAL_CHECK_OUTPUT
print("  sigma   std(loss)   predicted 1/(sqrt(n) sigma^2)   std(grad)   std(sigma^2 loss)")
for s, ls, gs, ws in variance_rows:
    print(f"{s:7.4f} {ls:11.4g} {1 / (np.sqrt(N_SAMPLES) * s**2):31.4g} {gs:11.4g} {ws:19.4g}")
print(f"log-log slopes for sigma <= 0.1: loss std {loss_slope:.2f} (theory -2), gradient std {grad_slope:.2f} "
      f"(theory -1)")
assert abs(loss_slope + 2) < 0.15 and abs(grad_slope + 1) < 0.2
assert abs(loss_std[0] * np.sqrt(N_SAMPLES) * sig_v[0] ** 2 - 1) < 0.2

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.loglog(sig_v, loss_std, "o-", label="std of the DSM loss")
ax.loglog(sig_v, grad_std, "s-", label="std of its gradient (all parameters)")
ax.loglog(sig_v, weighted_std, "^-", label=r"std of $\sigma^2\times$ loss")
ax.loglog(sig_v, 1 / (np.sqrt(N_SAMPLES) * sig_v**2), "k:", label=r"$1/(\sqrt{n}\,\sigma^2)$")
ax.set(xlabel=r"noise level $\sigma$", ylabel="standard deviation over noise draws", title="DSM noise vs sigma")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The measured loss noise follows $1/(\sqrt n\,\sigma^2)$ almost exactly at small $\sigma$, and the gradient noise
# grows like $1/\sigma$: at $\sigma = 0.01$ a DSM step is mostly noise. (At $\sigma = 1$ the noise rises again for a
# different reason: the network was trained at $\sigma = 0.3$, and points pushed that far from the data meet its
# own, larger, errors.) Multiplying the loss by $\sigma^2$ makes its
# noise independent of $\sigma$, which is exactly the weighting $\lambda(\sigma) = \sigma^2$ that notebook 05 uses to
# train one network at many noise levels at once: large levels for reliable scores far from the data, small levels
# for detail, and a sampler that walks down from one to the other.
#
# ## 6. Interactive: the bandwidth
#
# The seed post animated the KDE over the bandwidth; here it is a slider. Left: the truth blurred at the same
# bandwidth, $p_h$, with its score; middle: the KDE $q_h$ with its score; right: the Fisher divergences of section 3
# with the current $h$ marked. Everything is a closed form, so a move answers at once.

# %%
def draw_bandwidth(h=float(best_ll["h"])):
    row = next(r for r in table if r["h"] == h)
    q, p_h = sl.data.kde(x_data, h), mixture.perturbed(h)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    show_density(axes[0], p_h.log_prob, f"truth blurred at h = {h}")
    sl.plotting.plot_score_field(axes[0], p_h.score, WINDOW, WINDOW, n=15, color="C3")
    show_density(axes[1], q.log_prob, f"KDE at h = {h}", np.asarray(x_data))
    sl.plotting.plot_score_field(axes[1], q.score, WINDOW, WINDOW, n=15, color="C3")
    axes[2].loglog(hs, vs_perturbed, "o-", ms=3, label=r"$D_F(q_h\,\|\,p_h)$")
    axes[2].loglog(hs, [r["vs_truth"] for r in table], "s-", ms=3, label=r"$D_F(q_h\,\|\,p)$")
    axes[2].axvline(h, color="k", lw=1)
    axes[2].set(xlabel="bandwidth $h$", title="Fisher divergences")
    axes[2].legend(fontsize=8)
    plt.tight_layout()
    print(f"h = {h}: D_F(q_h || p_h) = {row['vs_perturbed']:.4g}, D_F(q_h || p) = {row['vs_truth']:.4g}, "
          f"held-out log-likelihood {row['heldout_ll']:.3f}")


draw_bandwidth()
plt.show()

# %%
import ipywidgets as widgets

sl.widgets.interactive_figure(
    draw_bandwidth,
    h=widgets.SelectionSlider(options=[float(h) for h in BANDWIDTHS], value=float(best_ll["h"]), description="h"),
)

# %% [markdown]
# ## Summary
#
# - The KDE of $n$ points is a mixture of $n$ Gaussians; its score is a softmax-weighted pull towards the points,
#   exact and finite everywhere when computed with log-sum-exp. Taking the log of the density itself fails wherever
#   it underflows.
# - Small bandwidths give a spiky, unreliable score; large ones match only a blurred truth. Both the score error
#   against the truth and the held-out likelihood pick a bandwidth in between.
# - DSM's loss is a regression onto $-\mathbf z/\sigma$; on a finite sample its exact minimiser is the KDE score at
#   bandwidth $\sigma$, and $L_{\text{DSM}}(s) - L_{\text{DSM}}(s^\star) = D_F(s\,\|\,q_\sigma)$. A network trained
#   long enough converges to it; early on, its smoothness keeps it closer to the truth.
# - The DSM loss noise grows like $1/\sigma^2$ and the gradient noise like $1/\sigma$, so a single tiny $\sigma$ is
#   impractical. Weighting by $\sigma^2$ and training many levels at once is the way out (notebook 05).
#
# ## Exercises
#
# 1. Prove that the DSM minimiser is the KDE score without Bayes' rule, by expanding the square in
#    $L_{\text{DSM}}(s)$ and using $\mathbb E[\mathbf z/\sigma \mid \tilde{\mathbf x}] = -\nabla\log q_\sigma(\tilde{\mathbf x})$.
# 2. Repeat section 3 with 50 and with 2000 samples. How does the bandwidth with the best held-out likelihood move?
# 3. Tweedie's formula says $\mathbb E[\mathbf x \mid \tilde{\mathbf x}] = \tilde{\mathbf x} + \sigma^2\nabla\log
#    q_\sigma(\tilde{\mathbf x})$. What does this denoiser return for the KDE score, and for the trained network?
#
# <details><summary>Solution 1</summary>
#
# $\tfrac12|s + \mathbf z/\sigma|^2 = \tfrac12|s|^2 + s\cdot\mathbf z/\sigma + \tfrac12|\mathbf z|^2/\sigma^2$. The last
# term does not depend on $s$. For the middle one, $\mathbb E[s(\tilde{\mathbf x})\cdot\mathbf z/\sigma] = \mathbb
# E_{\tilde{\mathbf x}}[s(\tilde{\mathbf x})\cdot\mathbb E[\mathbf z/\sigma \mid \tilde{\mathbf x}]]$, and
# $\mathbb E[\mathbf z/\sigma \mid \tilde{\mathbf x}] = \sum_i w_i(\tilde{\mathbf x})(\tilde{\mathbf x} - \mathbf
# x_i)/\sigma^2 = -\nabla\log q_\sigma$. So the loss is $\tfrac12\mathbb E_{q_\sigma}|s|^2 - \mathbb E_{q_\sigma}
# [s\cdot\nabla\log q_\sigma] + \text{const} = \tfrac12\mathbb E_{q_\sigma}|s - \nabla\log q_\sigma|^2 + \text{const}$.
# </details>
#
# <details><summary>Solution 2</summary>
#
# Call `bandwidth_table(mixture.sample(jax.random.key(1), n), BANDWIDTHS)` for both sizes. With 50 points the best
# bandwidth grows (sparser points need wider kernels to cover the gaps); with 2000 it shrinks. For a $d$-dimensional
# Gaussian the classical rule (Silverman's) is $h \propto n^{-1/(d+4)}$, here $n^{-1/6}$: a factor 40 in $n$ moves
# $h$ by about $40^{1/6} \approx 1.85$.
# </details>
#
# <details><summary>Solution 3</summary>
#
# For the KDE score, $\tilde{\mathbf x} + \sigma^2\sum_i w_i(\mathbf x_i - \tilde{\mathbf x})/\sigma^2 = \sum_i
# w_i(\tilde{\mathbf x})\,\mathbf x_i$: a softmax-weighted average of the training points, which snaps to the nearest
# training point when $\sigma$ is small. That is memorisation in its purest form. The trained network gives a
# smoother average (try `x_noisy[:5] + SIGMA**2 * score_fn(x_noisy[:5])` against the clean points). Notebook 06 uses
# this formula as the final denoising step of its sampler.
# </details>
#
# ## References
#
# 1. P. Vincent (2011). A connection between score matching and denoising autoencoders. *Neural Computation* 23(7),
#    1661-1674. [doi:10.1162/NECO_a_00142](https://doi.org/10.1162/NECO_a_00142)
# 2. Y. Song, S. Ermon (2019). Generative modeling by estimating gradients of the data distribution. *NeurIPS 32*.
#    [arXiv:1907.05600](https://arxiv.org/abs/1907.05600)
# 3. B. W. Silverman (1986). *Density Estimation for Statistics and Data Analysis*. Chapman & Hall.
# 4. B. Efron (2011). Tweedie's formula and selection bias. *JASA* 106(496), 1602-1614.
#    [doi:10.1198/jasa.2011.tm11181](https://doi.org/10.1198/jasa.2011.tm11181)

# %%
print(f"training time {train_seconds:.1f} s; notebook run time {time.perf_counter() - notebook_start:.0f} s")
