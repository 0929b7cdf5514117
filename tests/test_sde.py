"""Score SDEs against closed forms: kernels, mixture marginals, reverse-time sampling, ODE likelihoods."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import io_callback

import scorelib as sl

VE = sl.sde.VESDE(sigma_min=0.01, sigma_max=20.0)
VP = sl.sde.VPSDE(beta_min=0.1, beta_max=20.0)
MIX = sl.data.GaussianMixture(
    means=[[2.0, 1.0], [-2.0, -1.0]], covs=[np.eye(2), [[0.5, 0.2], [0.2, 0.4]]], weights=[0.7, 0.3]
)


def forward_em(sde, x0, key, t_end, n_steps):
    """Euler-Maruyama on the forward SDE dx = f dt + g dw, written out."""
    dt = t_end / n_steps

    def step(x, i):
        t = i * dt
        z = jax.random.normal(jax.random.fold_in(key, i), x.shape)
        return x + sde.drift(x, jnp.full(x.shape[0], t)) * dt + sde.diffusion(t) * jnp.sqrt(dt) * z, None

    return jax.lax.scan(step, x0, jnp.arange(n_steps))[0]


@pytest.mark.parametrize("sde", [VE, VP], ids=["VE", "VP"])
def test_forward_sde_marginals_match_the_kernel(sde):
    x0 = MIX.sample(jax.random.key(0), 20_000)
    t_end = 0.8
    xt = jax.jit(forward_em, static_argnames=("sde", "n_steps"))(sde, x0, jax.random.key(1), t_end, n_steps=800)
    a, s = float(sde.mean_coeff(t_end)), float(sde.std(t_end))
    # Conditioned on the drawn x0: mean a E[x0], covariance a^2 Cov(x0) + s^2 I.
    mean = a * np.mean(x0, axis=0)
    cov = a**2 * np.cov(np.asarray(x0).T) + s**2 * np.eye(2)
    np.testing.assert_allclose(np.mean(xt, axis=0), mean, atol=4 * s / np.sqrt(20_000) + 1e-3)
    np.testing.assert_allclose(np.cov(np.asarray(xt).T), cov, atol=0.04 * np.trace(cov) / 2)


def test_kernel_formulas():
    t = jnp.linspace(0.0, 1.0, 11)
    # VE: std^2 = sigma(t)^2 - sigma_min^2 and g^2 = d std^2 / dt; VP: std^2 = 1 - a^2, d log a / dt = -beta / 2.
    np.testing.assert_allclose(VE.std(t) ** 2, VE.sigma(t) ** 2 - VE.sigma_min**2, rtol=1e-5, atol=1e-10)
    dvar = jax.vmap(jax.grad(lambda u: VE.std(u) ** 2))(t[1:])  # (the square root's derivative is nan at 0)
    np.testing.assert_allclose(dvar, VE.diffusion(t[1:]) ** 2, rtol=1e-4)
    np.testing.assert_allclose(VP.std(t) ** 2 + VP.mean_coeff(t) ** 2, 1.0, rtol=1e-6)
    dlog = jax.vmap(jax.grad(lambda u: jnp.log(VP.mean_coeff(u))))(t)
    np.testing.assert_allclose(dlog, -0.5 * VP.beta(t), rtol=1e-5)
    assert float(VE.std(0.0)) == 0.0 and float(VP.std(0.0)) == 0.0
    for sde in (VE, VP):
        std = np.array([0.03, 0.5, 2.0 if sde is VE else 0.9])
        np.testing.assert_allclose(sde.std(sde.time_of_std(std)), std, rtol=1e-4)


def test_diffused_mixture_and_its_score():
    a, s = 0.6, 0.7
    d = MIX.diffused(a, s)
    np.testing.assert_allclose(d.means, 0.6 * MIX.means, rtol=1e-6)
    np.testing.assert_allclose(d.covs, 0.36 * MIX.covs + 0.49 * jnp.eye(2), rtol=1e-6)
    x = 2 * MIX.sample(jax.random.key(2), 50)
    np.testing.assert_allclose(MIX.diffused(1.0, 0.8).log_prob(x), MIX.perturbed(0.8).log_prob(x), rtol=1e-5)
    # The traced per-point score equals the gradient of the diffused log density, also at std = 0.
    for a, s in ((0.6, 0.7), (1.0, 0.0)):
        grad = jax.jit(jax.vmap(jax.grad(lambda y, a=a, s=s: MIX.diffused(a, s).log_prob(y[None])[0])))(x)
        np.testing.assert_allclose(MIX.diffused_score(x, a, s), grad, rtol=1e-4, atol=1e-5)
    scales, stds = jnp.linspace(0.2, 1.0, 8), jnp.linspace(0.0, 2.0, 8)
    per_point = jax.jit(MIX.diffused_score)(x[:8], scales, stds)
    one_by_one = jnp.concatenate([MIX.diffused_score(x[i : i + 1], float(scales[i]), float(stds[i])) for i in range(8)])
    np.testing.assert_allclose(per_point, one_by_one, rtol=1e-5, atol=1e-6)


def test_time_conditional_is_the_exact_change_of_variables():
    # With the mixture's perturbed score as the "network", time_conditional gives the exact score of p_t.
    def apply(params, x, sigma):
        return MIX.perturbed_score(x, sigma)

    x, t = MIX.sample(jax.random.key(3), 64), jnp.linspace(0.05, 1.0, 64)
    for sde in (VE, VP):
        got = sl.sde.time_conditional(apply, sde)(None, x, t)
        np.testing.assert_allclose(got, sl.sde.mixture_score(MIX, sde)(x, t), rtol=2e-4, atol=1e-5)


def test_dsm_loss_written_out():
    score_fn = sl.sde.mixture_score(MIX, VP)
    x, key = MIX.sample(jax.random.key(4), 256), jax.random.key(5)
    key_t, key_z = jax.random.split(key)
    t = jax.random.uniform(key_t, (256,), minval=0.01, maxval=1.0)
    z = jax.random.normal(key_z, x.shape)
    a, s = VP.mean_coeff(t)[:, None], VP.std(t)[:, None]
    expected = 0.5 * jnp.sum((s * score_fn(a * x + s * z, t) + z) ** 2, axis=1)
    got = sl.sde.dsm_loss(score_fn, x, key, VP, t_eps=0.01, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # At the exact score the loss is the conditional variance of the target, below that of the zero score (d/2 = 1).
    assert float(got.mean()) < 0.9


def test_ode_log_likelihood_of_the_exact_score_is_the_analytic_density():
    sde = VE  # the stiffer of the two (the noise grows by a factor 2000); the code path is the same for VP
    x = MIX.sample(jax.random.key(6), 300)
    p1 = MIX.diffused(float(sde.mean_coeff(1.0)), float(sde.std(1.0)))
    result = sl.metrics.ode_log_likelihood(sde, sl.sde.mixture_score(MIX, sde), x, prior_log_prob=p1.log_prob)
    t_eps = 1e-5
    analytic = MIX.diffused(float(sde.mean_coeff(t_eps)), float(sde.std(t_eps))).log_prob(x)
    assert float(jnp.mean(jnp.abs(result.log_prob - analytic))) < 0.01
    assert result.nfe > 10 and result.latents.shape == x.shape


def test_hutchinson_is_unbiased():
    # Replicas of 10 points, each with its own probe: the average over the replicas is the analytic log density
    # (with the exact p_1 as the prior, the ODE's log-likelihood is exact up to the solver's tolerance).
    n_points, n_rep, t_eps = 10, 100, 1e-3
    x = jnp.repeat(MIX.sample(jax.random.key(7), n_points), n_rep, axis=0)
    p1 = MIX.diffused(float(VP.mean_coeff(1.0)), float(VP.std(1.0)))
    analytic = np.asarray(MIX.diffused(float(VP.mean_coeff(t_eps)), float(VP.std(t_eps))).log_prob(x[::n_rep]))
    score_fn = sl.sde.mixture_score(MIX, VP)
    for method in ("gaussian", "rademacher"):  # one compiled solve serves both
        est = sl.metrics.ode_log_likelihood(
            VP, score_fn, x, key=jax.random.key(8), method=method, t_eps=t_eps, prior_log_prob=p1.log_prob
        ).log_prob
        est = np.asarray(est).reshape(n_points, n_rep)
        error = est.mean() - analytic.mean()
        se = est.std(axis=1, ddof=1).mean() / np.sqrt(est.size)
        assert abs(error) < 4 * se + 2e-3, (method, error, se)
        assert est.std(axis=1).min() > 0  # it is random


@pytest.mark.parametrize("predictor", ["euler_maruyama", "reverse_diffusion"])
def test_reverse_sde_from_the_prior_reproduces_the_mixture(predictor):
    n = 4000
    score_fn = sl.sde.mixture_score(MIX, VP)
    x_T = VP.prior_sample(jax.random.key(9), n, 2)
    x = sl.sde.predictor_corrector(
        VP, score_fn, x_T, jax.random.key(10), n_steps=300, predictor=predictor, n_corrector=1, snr=0.1
    ).samples
    share = sl.metrics.mode_shares(x, MIX.means)[1]
    assert abs(share - 0.3) < 4 * np.sqrt(0.21 / n)
    ref = np.asarray(MIX.sample(jax.random.key(11), 100_000))
    np.testing.assert_allclose(np.mean(x, axis=0), ref.mean(axis=0), atol=0.08)
    np.testing.assert_allclose(np.cov(np.asarray(x).T), np.cov(ref.T), atol=0.15)


def test_euler_maruyama_ve_and_trajectory():
    score_fn = sl.sde.mixture_score(MIX, VE)
    x_T = VE.prior_sample(jax.random.key(12), 2000, 2)
    result = sl.sde.euler_maruyama(VE, score_fn, x_T, jax.random.key(13), n_steps=100, return_trajectory=True)
    assert result.trajectory.shape == (101, 2000, 2)
    np.testing.assert_array_equal(result.trajectory[-1], result.samples)
    np.testing.assert_array_equal(result.trajectory[0], x_T)
    # The same loop without the trajectory (a traced step count) gives the same samples.
    again = sl.sde.euler_maruyama(VE, score_fn, x_T, jax.random.key(13), n_steps=100).samples
    np.testing.assert_allclose(again, result.samples, rtol=1e-5, atol=1e-4)
    assert float(jnp.std(result.samples)) < 3  # back from sigma_max = 20 to the data's scale


def test_probability_flow_encodes_and_decodes_and_counts_evaluations():
    count = [0]

    def bump(s):
        count[0] += 1
        return s

    exact = sl.sde.mixture_score(MIX, VP)

    def counting(x, t):
        s = exact(x, t)
        return io_callback(bump, jax.ShapeDtypeStruct(s.shape, s.dtype), s, ordered=True)

    x = MIX.sample(jax.random.key(14), 200)
    latents = sl.sde.probability_flow(VP, counting, x, t_start=1e-3, t_end=1.0)
    assert latents.nfe == count[0]
    back = sl.sde.probability_flow(VP, counting, latents.samples, t_start=1.0, t_end=1e-3)
    np.testing.assert_allclose(back.samples, x, atol=5e-3)
    count[0] = 0
    fixed = sl.sde.probability_flow(VP, counting, x, t_start=1e-3, t_end=1.0, n_steps=10, n_save=5)
    assert fixed.nfe == count[0] == 61 and fixed.trajectory.shape == (5, 200, 2)


def test_bad_inputs_raise():
    score_fn = sl.sde.mixture_score(MIX, VE)
    x = jnp.zeros((4, 2))
    key = jax.random.key(0)
    bad = [
        lambda: sl.sde.VESDE(sigma_min=1.0, sigma_max=0.5),
        lambda: sl.sde.VESDE(sigma_min=0.0),
        lambda: sl.sde.VPSDE(beta_min=-1.0),
        lambda: sl.sde.VPSDE(beta_min=5.0, beta_max=1.0),
        lambda: sl.sde.mixture_score(MIX, "ve"),
        lambda: sl.sde.predictor_corrector(VE, score_fn, x, key, n_steps=10, predictor="heun"),
        lambda: sl.sde.predictor_corrector(VE, score_fn, x, key, n_steps=0),
        lambda: sl.sde.predictor_corrector(VE, score_fn, x, key, n_steps=10, n_corrector=-1),
        lambda: sl.sde.predictor_corrector(VE, score_fn, x, key, n_steps=10, predictor="none", n_corrector=0),
        lambda: sl.sde.predictor_corrector(VE, score_fn, x, key, n_steps=10, snr=0.0),
        lambda: sl.sde.euler_maruyama(VE, score_fn, x, key, n_steps=10, t_eps=1.0),
        lambda: sl.sde.euler_maruyama(VE, score_fn, jnp.zeros(4), key, n_steps=10),
        lambda: sl.sde.probability_flow(VE, score_fn, x, t_start=0.5, t_end=0.5),
        lambda: sl.sde.probability_flow(VE, score_fn, x, t_end=0.0),
        lambda: sl.sde.dsm_loss(score_fn, x, key, VE, t_eps=0.0),
        lambda: sl.sde.dsm_loss(score_fn, x, key, VE, reduction="sum"),
        lambda: sl.metrics.ode_log_likelihood(VE, score_fn, x, method="skilling"),
        lambda: sl.metrics.ode_log_likelihood(VE, score_fn, x, method="rademacher"),  # no key
        lambda: sl.metrics.ode_log_likelihood(VE, score_fn, x, n_probes=0),
        lambda: MIX.diffused(0.0, 1.0),
        lambda: MIX.diffused(1.0, -1.0),
        lambda: MIX.diffused_score(x, 1.0, jnp.ones(3)),
        lambda: MIX.diffused_score(x, -1.0, 1.0),
    ]
    for make in bad:
        with pytest.raises(ValueError):
            make()


@pytest.mark.parametrize("sde", [sl.sde.VESDE(0.01, 20.0), sl.sde.VPSDE()], ids=["VE", "VP"])
def test_ode_drift_takes_one_time_per_point(sde):
    x = MIX.sample(jax.random.key(3), 5)
    t = jnp.linspace(0.1, 0.9, 5)
    score = sl.sde.mixture_score(MIX, sde)
    per_point = sl.sde.ode_drift(sde, score, x, t)
    one_by_one = jnp.concatenate([sl.sde.ode_drift(sde, score, x[i : i + 1], t[i]) for i in range(5)])
    np.testing.assert_allclose(per_point, one_by_one, rtol=1e-5, atol=1e-6)
