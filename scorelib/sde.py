"""Score SDEs (Song et al. 2021): forward SDEs, their kernels, and samplers of the reverse time.

A forward SDE ``dx = f(x, t) dt + g(t) dw`` on ``t in [0, T]``, ``T = 1``, turns
the data into noise. Both SDEs here have Gaussian perturbation kernels
``p_t(x_t | x_0) = N(mean_coeff(t) x_0, std(t)^2 I)``, so the marginal of a
Gaussian mixture is again a mixture (``GaussianMixture.diffused``) and the
continuous denoising loss needs no simulation.

Conventions (Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole 2021,
"Score-based generative modeling through stochastic differential equations",
arXiv:2011.13456, section 3.4 and appendix B):

* :class:`VESDE`, the continuous NCSN: ``sigma(t) = sigma_min (sigma_max /
  sigma_min)^t``, ``f = 0``, ``g(t) = sigma(t) sqrt(2 log(sigma_max / sigma_min))``.
  The process starts *at the data*, ``x(0) = x_0``, so the exact kernel variance
  is ``sigma(t)^2 - sigma_min^2`` (zero at ``t = 0``). Song et al.'s code uses
  ``sigma(t)^2``, i.e. it treats the data as already perturbed at ``sigma_min``;
  with the exact variance the closed-form marginals and the ODE likelihood
  refer to the data density itself. Prior ``N(0, sigma_max^2 I)``.
* :class:`VPSDE`, DDPM's (Ho, Jain, Abbeel 2020, arXiv:2006.11239) in continuous
  time: ``beta(t) = beta_min + t (beta_max - beta_min)``, ``f = -beta(t) x / 2``,
  ``g = sqrt(beta(t))``; ``mean_coeff(t) = exp(-int_0^t beta / 2)``,
  ``std(t)^2 = 1 - mean_coeff(t)^2``. Prior ``N(0, I)``.

Score functions take ``(x (n, d), t (n,))`` and return ``(n, d)``; the samplers
pass one time per point. Like the Langevin samplers, the SDE object and the
score function are static arguments of the compiled loops: keep them in
variables to reuse the compiled code. Step counts, ``snr`` and corrector counts
are traced, so changing them does not recompile (unless a trajectory is asked
for, whose length must be known).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from scorelib._validate import check_callable, check_points, check_positive, check_positive_int
from scorelib.samplers import SamplerResult

__all__ = [
    "VESDE",
    "VPSDE",
    "ODEResult",
    "mixture_score",
    "time_conditional",
    "dsm_loss",
    "euler_maruyama",
    "predictor_corrector",
    "probability_flow",
    "ode_drift",
    "PREDICTORS",
]

T_END = 1.0  # both SDEs run on [0, 1]


def _times(t, x):
    """``t`` (a scalar or ``(n,)``) as ``(n,)`` times in ``x``'s dtype."""
    return jnp.broadcast_to(jnp.asarray(t, x.dtype), (x.shape[0],))


@dataclass(frozen=True)
class VESDE:
    """The variance-exploding SDE ``dx = sigma(t) sqrt(2 log(sigma_max/sigma_min)) dw``.

    Args:
      sigma_min: ``sigma(0) > 0``.
      sigma_max: ``sigma(1) > sigma_min``; about the largest distance between data points.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __post_init__(self):
        check_positive(self.sigma_min, "sigma_min")
        check_positive(self.sigma_max, "sigma_max")
        if not self.sigma_max > self.sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min; got {self.sigma_max} <= {self.sigma_min}")

    @property
    def T(self) -> float:  # noqa: N802 (the paper's symbol)
        return T_END

    def sigma(self, t):
        """``sigma(t) = sigma_min (sigma_max / sigma_min)^t``."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** jnp.asarray(t)

    def drift(self, x, t):
        """``f(x, t) = 0``, shape ``(n, d)``."""
        return jnp.zeros_like(x)

    def diffusion(self, t):
        """``g(t) = sigma(t) sqrt(2 log(sigma_max / sigma_min))``, so ``g^2 = d sigma^2 / dt``."""
        return self.sigma(t) * np.sqrt(2 * np.log(self.sigma_max / self.sigma_min))

    def mean_coeff(self, t):
        """The kernel's mean is ``mean_coeff(t) x_0``; here 1."""
        return jnp.ones_like(jnp.asarray(t, jnp.float32))

    def std(self, t):
        """The kernel's standard deviation ``sqrt(sigma(t)^2 - sigma_min^2)`` (exact from ``x(0) = x_0``)."""
        t = jnp.asarray(t)
        return self.sigma_min * jnp.sqrt(jnp.expm1(2 * t * np.log(self.sigma_max / self.sigma_min)))

    def time_of_std(self, std):
        """The time at which :meth:`std` equals ``std`` (for samplers indexed by noise level)."""
        std = jnp.asarray(std)
        return jnp.log1p((std / self.sigma_min) ** 2) / (2 * np.log(self.sigma_max / self.sigma_min))

    def prior_std(self) -> float:
        return self.sigma_max

    def prior_sample(self, key, n: int, dim: int):
        """``(n, dim)`` draws of the prior ``N(0, sigma_max^2 I)``."""
        check_positive_int(n, "n")
        check_positive_int(dim, "dim")
        return self.prior_std() * jax.random.normal(key, (n, dim))

    def prior_log_prob(self, x):
        """``log N(x; 0, sigma_max^2 I)``, shape ``(n,)``."""
        return _gaussian_log_prob(x, self.prior_std())

    def discretize(self, x, t, dt):
        """``(f, G)`` of the exact one-step kernel from ``t - dt`` to ``t``: ``x_t = x_{t-dt} + f + G z``."""
        g2 = self.sigma(t) ** 2 - self.sigma(t - dt) ** 2
        return jnp.zeros_like(x), jnp.sqrt(g2)

    def corrector_alpha(self, t, dt):
        """Song et al.'s ``alpha_i`` in the Langevin corrector's step: 1 for VE."""
        return jnp.ones_like(jnp.asarray(t))


@dataclass(frozen=True)
class VPSDE:
    """The variance-preserving SDE ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw`` (DDPM in continuous time).

    Args:
      beta_min: ``beta(0) > 0``.
      beta_max: ``beta(1) > beta_min``.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self):
        check_positive(self.beta_min, "beta_min")
        check_positive(self.beta_max, "beta_max")
        if not self.beta_max > self.beta_min:
            raise ValueError(f"beta_max must exceed beta_min; got {self.beta_max} <= {self.beta_min}")

    @property
    def T(self) -> float:  # noqa: N802
        return T_END

    def beta(self, t):
        return self.beta_min + jnp.asarray(t) * (self.beta_max - self.beta_min)

    def drift(self, x, t):
        """``f(x, t) = -beta(t) x / 2``, shape ``(n, d)``."""
        return -0.5 * _times(self.beta(t), x)[:, None] * x

    def diffusion(self, t):
        """``g(t) = sqrt(beta(t))``."""
        return jnp.sqrt(self.beta(t))

    def _log_mean_coeff(self, t):
        t = jnp.asarray(t)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def mean_coeff(self, t):
        """``exp(-int_0^t beta(s) ds / 2)``."""
        return jnp.exp(self._log_mean_coeff(t))

    def std(self, t):
        """``sqrt(1 - mean_coeff(t)^2)``."""
        return jnp.sqrt(-jnp.expm1(2 * self._log_mean_coeff(t)))

    def time_of_std(self, std):
        """The time at which :meth:`std` equals ``std`` in ``[0, 1)`` (the root of a quadratic in ``t``)."""
        c = -0.5 * jnp.log1p(-(jnp.asarray(std) ** 2))  # = t^2 (beta_max - beta_min) / 4 + t beta_min / 2
        a, b = 0.25 * (self.beta_max - self.beta_min), 0.5 * self.beta_min
        return 2 * c / (b + jnp.sqrt(b**2 + 4 * a * c))

    def prior_std(self) -> float:
        return 1.0

    def prior_sample(self, key, n: int, dim: int):
        """``(n, dim)`` draws of the prior ``N(0, I)``."""
        check_positive_int(n, "n")
        check_positive_int(dim, "dim")
        return jax.random.normal(key, (n, dim))

    def prior_log_prob(self, x):
        """``log N(x; 0, I)``, shape ``(n,)``."""
        return _gaussian_log_prob(x, 1.0)

    def discretize(self, x, t, dt):
        """``(f, G)`` of the exact one-step kernel from ``t - dt`` to ``t``: ``x_t = x_{t-dt} + f + G z``."""
        a = jnp.exp(self._log_mean_coeff(t) - self._log_mean_coeff(t - dt))
        return (_times(a, x)[:, None] - 1.0) * x, jnp.sqrt(1.0 - a**2)

    def corrector_alpha(self, t, dt):
        """Song et al.'s ``alpha_i = 1 - beta_i``: the one-step kernel's squared mean coefficient."""
        return jnp.exp(2 * (self._log_mean_coeff(t) - self._log_mean_coeff(t - dt)))


def _gaussian_log_prob(x, std):
    check_points(x, "x")
    d = x.shape[1]
    return -0.5 * jnp.sum(x**2, axis=1) / std**2 - d * np.log(std) - 0.5 * d * np.log(2 * np.pi)


def _check_sde(sde) -> None:
    if not isinstance(sde, (VESDE, VPSDE)):
        raise ValueError(f"sde must be a VESDE or a VPSDE; got {type(sde).__name__}")


def _check_t_eps(t_eps) -> None:
    check_positive(t_eps, "t_eps")
    if not t_eps < T_END:
        raise ValueError(f"t_eps must be in (0, 1), the smallest time the samplers reach; got {t_eps}")


def _mixture_score(mixture, sde, x, t):
    t = _times(t, x)
    return mixture.diffused_score(x, sde.mean_coeff(t), sde.std(t))


def mixture_score(mixture, sde) -> Callable:
    """The exact score ``(x, t) -> grad log p_t(x)`` of a ``GaussianMixture`` pushed through ``sde``.

    Keep the returned function in a variable: samplers compile once per score function object.
    """
    _check_sde(sde)
    return partial(_mixture_score, mixture, sde)


def _time_conditional(sde, apply, params, x, t):
    t = _times(t, x)
    a, s = sde.mean_coeff(t), sde.std(t)
    return apply(params, x / a[:, None], s / a) / a[:, None]


def time_conditional(apply: Callable, sde) -> Callable:
    """A noise-conditional network ``apply(params, x, sigma)`` as a time-conditional one ``(params, x, t)``.

    The marginal at time ``t`` is the law of ``a x_0 + s z`` (``a = mean_coeff(t)``,
    ``s = std(t)``), i.e. the data perturbed at level ``sigma = s / a`` and scaled
    by ``a``. So ``grad log p_t(x) = grad log p_sigma(x / a) / a`` exactly, and

        ``score(params, x, t) = apply(params, x / a, s / a) / a``.

    For the VE SDE (``a = 1``) this is ``apply(params, x, std(t))``. For the VP
    SDE with ``scorelib.nets.ncsn_apply`` it gives the network the input
    ``x / sqrt(a^2 + s^2) = x`` and divides its output by ``s``: the usual VP
    parametrisation, with nothing new to write.

    Returns:
      ``(params, x (n, d), t (n,) or scalar) -> (n, d)``; bind it with ``scorelib.nets.bind``.
    """
    _check_sde(sde)
    check_callable(apply, "apply")
    return partial(_time_conditional, sde, apply)


def dsm_loss(score_fn: Callable, x, key, sde, *, t_eps: float = 1e-3, reduction: str = "mean"):
    """Continuous denoising score matching (Song et al. 2021, eq. 7) with ``lambda(t) = std(t)^2``.

    ``t ~ U(t_eps, 1)``, ``z ~ N(0, I)``, ``x_t = mean_coeff(t) x + std(t) z``, and the
    per-point term ``0.5 || std(t) s(x_t, t) + z ||^2``, i.e. ``0.5 lambda(t) || s + z / std ||^2``
    with the kernel's variance as weight (``sigma(t)^2`` for VE up to ``sigma_min^2``, ``1 - mean_coeff^2``
    for VP), the continuous version of ``ncsn_loss``.

    Args:
      score_fn: ``(x (n, d), t (n,)) -> (n, d)``.
      x: ``(n, d)`` data.
      key: a ``jax.random`` key.
      sde: a :class:`VESDE` or :class:`VPSDE`.
      t_eps: smallest time drawn, in (0, 1).
      reduction: ``"mean"`` or ``"none"`` (per-point values).
    """
    _check_sde(sde)
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    _check_t_eps(t_eps)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}")
    key_t, key_z = jax.random.split(key)
    t = jax.random.uniform(key_t, (x.shape[0],), x.dtype, minval=t_eps, maxval=T_END)
    z = jax.random.normal(key_z, x.shape, x.dtype)
    a, s = sde.mean_coeff(t)[:, None], sde.std(t)[:, None]
    per_point = 0.5 * jnp.sum((s * score_fn(a * x + s * z, t) + z) ** 2, axis=1)
    return per_point if reduction == "none" else jnp.mean(per_point)


# ----------------------------------------------------------------------------------------------------------------
# Reverse-time SDE samplers
# ----------------------------------------------------------------------------------------------------------------

PREDICTORS = ("euler_maruyama", "reverse_diffusion", "none")


def _pc_step(sde, score_fn, i, x, key, n_steps, n_corrector, snr, t_eps, predictor, denoise):
    """Step ``i``: ``n_corrector`` Langevin steps at ``t_i``, then the predictor from ``t_i`` to ``t_{i+1}``."""
    dt = (T_END - t_eps) / n_steps
    t = T_END - i * dt
    tv = _times(t, x)
    key_c, key_p = jax.random.split(jax.random.fold_in(key, i))

    # Corrector (Song et al. 2021, Algorithm 5): step 2 alpha (snr ||z|| / ||s||)^2, norms averaged over the batch.
    alpha = sde.corrector_alpha(t, dt)

    def corrector(j, x):
        s = score_fn(x, tv)
        z = jax.random.normal(jax.random.fold_in(key_c, j), x.shape, x.dtype)
        s_norm = jnp.mean(jnp.linalg.norm(s, axis=1))
        z_norm = jnp.mean(jnp.linalg.norm(z, axis=1))
        eps = 2 * alpha * (snr * z_norm / s_norm) ** 2
        return x + eps * s + jnp.sqrt(2 * eps) * z

    x = jax.lax.fori_loop(0, n_corrector, corrector, x)

    z = jax.random.normal(key_p, x.shape, x.dtype)
    noise_on = jnp.where(jnp.logical_and(denoise, i == n_steps - 1), 0.0, 1.0)

    def euler_maruyama(x):  # x <- x - [f - g^2 s] dt + g sqrt(dt) z
        g = sde.diffusion(t)
        return x - (sde.drift(x, tv) - g**2 * score_fn(x, tv)) * dt + noise_on * g * jnp.sqrt(dt) * z

    def reverse_diffusion(x):  # Song et al. 2021, eq. 46: x <- x - f + G^2 s + G z, (f, G) the one-step kernel's
        f, G = sde.discretize(x, t, dt)
        return x - f + G**2 * score_fn(x, tv) + noise_on * G * z

    # The predictor is a traced index (one compiled loop serves all three); "none" leaves x.
    return jax.lax.switch(predictor, (euler_maruyama, reverse_diffusion, lambda x: x), x)


@partial(jax.jit, static_argnames=("sde", "score_fn"))
def _pc_loop(sde, score_fn, x, key, n_steps, n_corrector, snr, t_eps, predictor, denoise):
    def body(i, x):
        return _pc_step(sde, score_fn, i, x, key, n_steps, n_corrector, snr, t_eps, predictor, denoise)

    return jax.lax.fori_loop(0, n_steps, body, x)


@partial(jax.jit, static_argnames=("sde", "score_fn", "n_steps"))
def _pc_scan(sde, score_fn, x, key, n_steps, n_corrector, snr, t_eps, predictor, denoise):
    def body(x, i):
        x = _pc_step(sde, score_fn, i, x, key, n_steps, n_corrector, snr, t_eps, predictor, denoise)
        return x, x

    x_end, states = jax.lax.scan(body, x, jnp.arange(n_steps))
    return x_end, jnp.concatenate([x[None], states])


def predictor_corrector(
    sde,
    score_fn: Callable,
    x_T,
    key,
    *,
    n_steps: int,
    predictor: str = "reverse_diffusion",
    n_corrector: int = 1,
    snr: float = 0.16,
    t_eps: float = 1e-3,
    denoise: bool = True,
    return_trajectory: bool = False,
) -> SamplerResult:
    """Predictor-corrector sampling of the reverse-time SDE (Song et al. 2021, Algorithms 2-3, 5).

    The time grid is ``t_i = 1 - i (1 - t_eps) / n_steps``. At each ``t_i``,
    ``n_corrector`` steps of Langevin dynamics with ``s(., t_i)`` (which leaves
    ``p_{t_i}`` invariant) correct the state towards the marginal it should have
    at ``t_i``, with step ``eps = 2 alpha (snr ||z|| / ||s||)^2``: ``snr`` is the
    ratio of the drift ``eps s`` to the noise ``sqrt(2 eps) z`` (norms averaged
    over the batch, as in the authors' code). Then the predictor moves the state
    to ``t_{i+1}`` along the reverse-time SDE (Anderson 1982)
    ``dx = [f - g^2 grad log p_t] dt + g dw_bar``:

    * ``"euler_maruyama"``: ``x <- x - (f - g^2 s) dt + g sqrt(dt) z``;
    * ``"reverse_diffusion"``: ``x <- x - f_i + G_i^2 s + G_i z`` with ``(f_i, G_i)``
      the exact one-step forward kernel (:meth:`VESDE.discretize`);
    * ``"none"``: corrector only (the time still decreases step by step).

    Score evaluations: ``n_steps * (n_corrector + 1)`` (``n_steps * n_corrector`` without a predictor).
    The corrector runs first, as in Song et al.'s code, so that with ``denoise`` the
    last operation is the noise-free predictor step (it returns the mean of the last
    update, Song et al.'s "noise removal"; the paper's Algorithm 2 writes the same
    loop with the corrector after the predictor).

    Args:
      sde: a :class:`VESDE` or :class:`VPSDE`.
      score_fn: ``(x (n, d), t (n,)) -> (n, d)``.
      x_T: ``(n, d)`` starting points, usually ``sde.prior_sample``.
      key: a ``jax.random`` key (step ``i`` uses ``fold_in(key, i)``).
      n_steps: number of time steps.
      predictor: one of :data:`PREDICTORS`.
      n_corrector: Langevin steps per time step, ``>= 0``.
      snr: the corrector's signal-to-noise ratio ``> 0``.
      t_eps: the last time, in (0, 1).
      denoise: no noise in the last predictor step.
      return_trajectory: also return the ``(n_steps + 1, n, d)`` states (``n_steps`` is then compiled in).

    Returns:
      A ``SamplerResult``.
    """
    _check_sde(sde)
    check_callable(score_fn, "score_fn")
    check_points(x_T, "x_T")
    check_positive_int(n_steps, "n_steps")
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {PREDICTORS}; got {predictor!r}")
    if isinstance(n_corrector, bool) or not isinstance(n_corrector, (int, np.integer)) or n_corrector < 0:
        raise ValueError(f"n_corrector must be an integer >= 0; got {n_corrector!r}")
    if predictor == "none" and n_corrector == 0:
        raise ValueError("with predictor='none' at least one corrector step is needed")
    check_positive(snr, "snr")
    _check_t_eps(t_eps)
    args = (jnp.asarray(x_T), key, n_steps, n_corrector, snr, t_eps, PREDICTORS.index(predictor), bool(denoise))
    if return_trajectory:
        return SamplerResult(*_pc_scan(sde, score_fn, *args))
    return SamplerResult(_pc_loop(sde, score_fn, *args))


def euler_maruyama(
    sde,
    score_fn: Callable,
    x_T,
    key,
    *,
    n_steps: int,
    t_eps: float = 1e-3,
    denoise: bool = True,
    return_trajectory: bool = False,
) -> SamplerResult:
    """Euler-Maruyama on the reverse-time SDE ``dx = [f - g^2 s] dt + g dw_bar`` from ``t = 1`` to ``t_eps``.

    ``x <- x - (f(x, t) - g(t)^2 s(x, t)) dt + g(t) sqrt(dt) z`` with ``dt = (1 - t_eps) / n_steps``:
    :func:`predictor_corrector` with the Euler-Maruyama predictor and no corrector
    (``n_steps`` score evaluations).

    Args:
      sde: a :class:`VESDE` or :class:`VPSDE`.
      score_fn: ``(x (n, d), t (n,)) -> (n, d)``.
      x_T: ``(n, d)`` starting points.
      key: a ``jax.random`` key.
      n_steps: number of steps.
      t_eps: the last time, in (0, 1).
      denoise: no noise in the last step.
      return_trajectory: also return every state.
    """
    return predictor_corrector(
        sde,
        score_fn,
        x_T,
        key,
        n_steps=n_steps,
        predictor="euler_maruyama",
        n_corrector=0,
        t_eps=t_eps,
        denoise=denoise,
        return_trajectory=return_trajectory,
    )


# ----------------------------------------------------------------------------------------------------------------
# The probability-flow ODE
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ODEResult(SamplerResult):
    """A :class:`SamplerResult` with the number of score (vector-field) evaluations ``nfe``."""

    nfe: int = 0


def ode_drift(sde, score_fn, x, t):
    """The probability-flow drift ``f(x, t) - g(t)^2 s(x, t) / 2``, shape ``(n, d)``."""
    tv = _times(t, x)  # a scalar or one time per point
    return sde.drift(x, tv) - 0.5 * (sde.diffusion(tv) ** 2)[:, None] * score_fn(x, tv)


def _nfe(stats) -> jax.Array:
    # Tsit5 is "first same as last": one evaluation at the start, then 6 new ones per step,
    # accepted or rejected (diffrax's initial-step choice reuses them). Checked against a
    # counting vector field in tests/test_sde.py.
    return 6 * stats["num_steps"] + 1


def _solve(vector_field, y0, t0, t1, rtol, atol, n_steps, ts):
    import diffrax  # imported on first use: it takes a second or two

    term = diffrax.ODETerm(vector_field)
    saveat = diffrax.SaveAt(ts=ts) if ts is not None else diffrax.SaveAt(t1=True)
    if n_steps:
        controller, dt0 = diffrax.ConstantStepSize(), (t1 - t0) / n_steps
    else:
        controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
    return diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0, t1, dt0, y0, saveat=saveat, stepsize_controller=controller, max_steps=16_384
    )


@partial(jax.jit, static_argnames=("sde", "score_fn", "rtol", "atol", "n_steps", "n_save"))
def _flow(sde, score_fn, x, t_start, t_end, rtol, atol, n_steps, n_save):
    ts = jnp.linspace(t_start, t_end, n_save) if n_save else None
    sol = _solve(lambda t, y, args: ode_drift(sde, score_fn, y, t), x, t_start, t_end, rtol, atol, n_steps, ts)
    return sol.ys[-1], (sol.ys if n_save else None), _nfe(sol.stats)


def probability_flow(
    sde,
    score_fn: Callable,
    x,
    *,
    t_start: float = 1.0,
    t_end: float = 1e-3,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    n_steps: int | None = None,
    n_save: int | None = None,
) -> ODEResult:
    """Solve the probability-flow ODE ``dx/dt = f(x, t) - g(t)^2 s(x, t) / 2`` from ``t_start`` to ``t_end``.

    Its solutions have the same marginals ``p_t`` as the SDE (Song et al. 2021,
    section 4.3), with no noise: from ``t_start = 1`` to ``t_end ~ 0`` it maps
    prior samples to data (sampling, decoding); the other way it encodes data
    into latents. Solved with diffrax's Tsit5 (5th order) with an adaptive step
    (a PID controller with tolerances ``rtol``, ``atol`` on the whole batch), or
    with ``n_steps`` equal steps.

    Args:
      sde: a :class:`VESDE` or :class:`VPSDE`.
      score_fn: ``(x (n, d), t (n,)) -> (n, d)``.
      x: ``(n, d)`` states at ``t_start``.
      t_start, t_end: in ``[t_eps, 1]``, either order.
      rtol, atol: tolerances of the adaptive step.
      n_steps: if given, that many equal Tsit5 steps instead (``6 n_steps + 1`` evaluations).
      n_save: if given, also return the states at ``n_save`` equally spaced times from ``t_start`` to ``t_end``.

    Returns:
      An :class:`ODEResult` with ``samples`` (the states at ``t_end``), ``trajectory``
      (``(n_save, n, d)`` or ``None``) and ``nfe``, the number of score evaluations.
    """
    _check_sde(sde)
    check_callable(score_fn, "score_fn")
    check_points(x, "x")
    for name, t in (("t_start", t_start), ("t_end", t_end)):
        if not 0 < t <= T_END:
            raise ValueError(f"{name} must be in (0, 1]; got {t}")
    if t_start == t_end:
        raise ValueError("t_start and t_end must differ")
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    if n_steps is not None:
        check_positive_int(n_steps, "n_steps")
    if n_save is not None:
        check_positive_int(n_save, "n_save")
    end, traj, nfe = _flow(sde, score_fn, jnp.asarray(x), float(t_start), float(t_end), float(rtol), float(atol),
                           n_steps, n_save)  # fmt: skip
    return ODEResult(samples=end, trajectory=traj, nfe=int(nfe))
