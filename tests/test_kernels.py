"""Kernels: closed-form eNTK = generic Jacobian eNTK, symmetry and PSD, convergence to the infinite-width NTK,
rotation invariance, Monte Carlo checks of the arc-cosine kernels, special values, blocking and bad input."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax import network
from reprjax.kernels import empirical as kernels
from reprjax.kernels import infinite

D, N, M = 8, 24, 64
SUBSETS = [("W", "a", "b"), ("W",), ("a",), ("b",), ("W", "b")]  # every branch of the closed form
seeds = st.integers(0, 2**31 - 1)


@functools.lru_cache(maxsize=None)
def restricted_apply(act: str, parts: tuple[str, ...]):
    """``forward`` with the parameter groups outside ``parts`` frozen (zero Jacobian): the eNTK of ``parts``.

    Cached so that the generic eNTK (``apply_fn`` is a static jit argument) compiles once per (act, parts).
    """

    def apply_fn(p, x):
        frozen = {k: jax.lax.stop_gradient(getattr(p, k)) for k in kernels.PARTS if k not in parts}
        return network.forward(p.replace(**frozen), x, act)

    return apply_fn


def perturbed_network(seed: int, act: str, width: int = M, d: int = D) -> network.TwoLayerParams:
    """Symmetric init with non-zero biases, then ``a`` scaled so that ``a^2 != 1`` and the pairs differ."""
    k_p, k_a = jax.random.split(jax.random.key(seed))
    p = network.init_symmetric(k_p, d, network.NetworkConfig(width=width, activation=act, init_bias_scale=1.0))
    return p.replace(a=p.a * jax.random.uniform(k_a, (width,), minval=0.3, maxval=1.7))


def inputs(seed: int, n: int = N, d: int = D) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (n, d), jnp.float32)


def assert_rel_close(got, want, rtol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err <= rtol, f"relative error {err:.3g} > {rtol}"


# ------------------------------------------------------------------------------------- closed form vs generic
@pytest.mark.parametrize("act", ["relu", "softplus", "poly"])
@settings(max_examples=3)
@given(seed=seeds)
def test_closed_form_entk_equals_generic_jacobian_contraction(act, seed):
    params = perturbed_network(seed, act)
    x1, x2 = inputs(seed + 1), inputs(seed + 2, n=N - 7)
    # generic eNTK of each parameter group alone (the other groups frozen) and of the whole network, with blocks
    # that divide neither m nor n; the cross kernel takes the plain path, the Gram matrix the symmetric one
    generic = {p: kernels.entk(restricted_apply(act, (p,)), params, x1, x2, block_size=5) for p in kernels.PARTS}
    full_apply = restricted_apply(act, kernels.PARTS)
    assert_rel_close(sum(generic.values()), kernels.entk(full_apply, params, x1, x2, block_size=5), 1e-5)
    for parts in SUBSETS:
        got = kernels.entk_two_layer(params, x1, x2, act=act, parts=parts, block_size=24)
        assert_rel_close(got, sum(generic[p] for p in parts), 1e-5)
    got = kernels.entk_two_layer(params, x1, act=act, block_size=24, row_block_size=10)
    assert_rel_close(got, kernels.entk(full_apply, params, x1, block_size=5), 1e-5)


def test_generic_entk_equals_full_jacobian_product_for_a_deeper_network():
    """The generic eNTK on a 3-layer tanh MLP (a leaf of 2560 parameters takes the chunked contraction)."""
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = {"W1": jax.random.normal(k1, (40, D)) / np.sqrt(D), "W2": jax.random.normal(k2, (64, 40)) / np.sqrt(40),
              "v": jax.random.normal(k3, (64,)) / 8.0, "c": jnp.float32(0.3)}

    def mlp(p, x):
        return jnp.tanh(jnp.tanh(x @ p["W1"].T) @ p["W2"].T) @ p["v"] + p["c"]

    x1, x2 = inputs(1, n=13), inputs(2, n=9)
    jac = jax.jit(lambda x: jnp.concatenate(  # noqa: E731
        [leaf.reshape(x.shape[0], -1) for leaf in jax.tree.leaves(jax.jacrev(mlp)(params, x))], axis=1))
    j1 = np.asarray(jac(x1), np.float64)
    j2 = np.asarray(jac(x2), np.float64)
    assert_rel_close(kernels.entk(mlp, params, x1, x2, block_size=4), j1 @ j2.T, 1e-5)
    assert_rel_close(kernels.entk(mlp, params, x1, block_size=4), j1 @ j1.T, 1e-5)


# ---------------------------------------------------------------------------------------------- symmetry, PSD
@settings(max_examples=8)
@given(seed=seeds, act=st.sampled_from(["relu", "softplus", "poly"]))
def test_entk_is_symmetric_and_positive_semidefinite(seed, act):
    params = perturbed_network(seed, act)
    x = inputs(seed + 1)
    for k in (kernels.entk_two_layer(params, x, act=act, row_block_size=10),
              kernels.entk_two_layer(params, x, x + 0.0, act=act)):  # a distinct copy: the plain path
        k = np.asarray(k, np.float64)
        scale = np.max(np.abs(k))
        assert np.max(np.abs(k - k.T)) <= 1e-6 * scale
        eig = np.linalg.eigvalsh(0.5 * (k + k.T))
        assert eig[0] >= -1e-6 * np.trace(k) / N
    for parts in (kernels.PARTS, ("W",)):  # mirrored strips: exactly symmetric
        k_sym = np.asarray(kernels.entk_two_layer(params, x, act=act, parts=parts, row_block_size=10))
        np.testing.assert_array_equal(k_sym, k_sym.T)


def test_symmetric_path_equals_plain_path_for_any_blocking_and_parts():
    """Strips of 12 rows (37 = 3 * 12 + 1) and hidden blocks of 40 (96 = 2 * 40 + 16) against one plain block."""
    params = perturbed_network(3, "softplus", width=96)
    x = inputs(4, n=37)
    for parts in [("W", "a", "b"), ("W",), ("a",)]:  # the G and Phi accumulators alone and together
        want = kernels.entk_two_layer(params, x, x + 0.0, act="softplus", parts=parts, block_size=96)
        got = kernels.entk_two_layer(params, x, act="softplus", parts=parts, block_size=40, row_block_size=12)
        assert_rel_close(got, want, 2e-6)
    got = kernels.entk_two_layer(params, x, act="softplus", block_size=1000, row_block_size=1000)
    assert_rel_close(got, kernels.entk_two_layer(params, x, x + 0.0, act="softplus", block_size=96), 2e-6)


# ----------------------------------------------------------------------------------------- infinite width
@pytest.mark.parametrize(
    "config,a_scale",
    [(network.NetworkConfig(width=2), 1.0),  # the paper's: a = +-1, w ~ N(0, I/d), b = 0
     (network.NetworkConfig(width=2, init="sphere"), 1.0),  # same kernel for ReLU with b = 0
     (network.NetworkConfig(width=2, init_bias_scale=0.8), 0.5),  # bias_var = 0.64, a = +-0.5
     (network.NetworkConfig(width=2, output_scale="none", init_bias_scale=0.3), 2.0)],
    ids=["paper", "sphere", "bias_and_small_a", "small_bias_large_a"],
)
def test_entk_over_width_approaches_infinite_ntk_like_inverse_sqrt_m(config, a_scale):
    d, n, seeds_ = 16, 48, range(4)
    x = inputs(100, n=n, d=d) * jnp.linspace(0.5, 2.0, n)[:, None]  # varied norms
    bias_var = config.init_bias_scale**2
    want = np.asarray(kernels.ntk_infinite(x, a_scale=a_scale, bias_var=bias_var), np.float64)
    errors = {}
    for m in (256, 1024, 4096, 65536):
        cfg = config.replace(width=m)
        errs = []
        for s in seeds_:
            params = network.init_symmetric(jax.random.key(s), d, cfg)
            params = params.replace(a=params.a * a_scale)  # a = +-a_scale
            k = np.asarray(kernels.entk_two_layer(params, x), np.float64) / m
            errs.append(np.linalg.norm(k - want) / np.linalg.norm(want))
        errors[m] = float(np.mean(errs))
    slope = np.log(errors[4096] / errors[256]) / np.log(16.0)
    assert -0.75 <= slope <= -0.3, (slope, errors)
    # no floor: a wrong normalisation (say bias_var off by 0.05) would stall the error near 0.03
    long_slope = np.log(errors[65536] / errors[256]) / np.log(256.0)
    assert -0.6 <= long_slope <= -0.42, (long_slope, errors)
    assert errors[65536] < 0.012, errors


@pytest.mark.parametrize("parts", [("W",), ("a",), ("b",)])
def test_each_infinite_part_is_the_limit_of_its_empirical_part(parts):
    d, n, m = 16, 32, 16384
    x = inputs(7, n=n, d=d)
    params = network.init_symmetric(jax.random.key(8), d, network.NetworkConfig(width=m, init_bias_scale=0.5))
    got = np.asarray(kernels.entk_two_layer(params, x, parts=parts), np.float64) / m
    want = np.asarray(kernels.ntk_infinite(x, bias_var=0.25, parts=parts), np.float64)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.03


def _random_rotation(seed: int, d: int) -> jax.Array:
    q, r = jnp.linalg.qr(jax.random.normal(jax.random.key(seed), (d, d), jnp.float32))
    return q * jnp.sign(jnp.diagonal(r))[None, :]


@given(seed=seeds, bias_var=st.sampled_from([0.0, 0.3]))
def test_infinite_kernels_are_rotation_invariant(seed, bias_var):
    q = _random_rotation(seed, D)
    x1, x2 = inputs(11), inputs(12, n=10)
    fns = [functools.partial(kernels.relu_nngp, bias_var=bias_var),
           functools.partial(kernels.relu_step_kernel, bias_var=bias_var),
           functools.partial(kernels.ntk_infinite, a_scale=0.7, bias_var=bias_var)]
    for fn in fns:
        assert_rel_close(fn(x1 @ q, x2 @ q), fn(x1, x2), 1e-4)
        assert_rel_close(fn(x1 @ q), fn(x1), 1e-4)


def test_arc_cosine_kernels_match_monte_carlo():
    """200k draws of (w, b); tolerance: 5 Monte Carlo standard errors."""
    rng = np.random.default_rng(0)
    d, draws = D, 200_000
    x = np.asarray(inputs(21, n=6), np.float64) * np.array([[0.3], [1.0], [2.0], [1.0], [0.7], [1.5]])
    x[3] = -x[1]  # an opposite pair (theta = pi without bias)
    for bias_var in (0.0, 0.5):
        w = rng.standard_normal((draws, d)) / np.sqrt(d)
        b = np.sqrt(bias_var) * rng.standard_normal((draws, 1))
        z = w @ x.T + b  # (draws, 6)
        relu, step = np.maximum(z, 0.0), (z >= 0).astype(np.float64)
        for samples, exact in ((relu, kernels.relu_nngp(x, bias_var=bias_var)),
                               (step, kernels.relu_step_kernel(x, bias_var=bias_var))):
            prods = samples[:, :, None] * samples[:, None, :]
            mc, se = prods.mean(0), prods.std(0) / np.sqrt(draws)
            # + 2e-4: float32 rounding of rho near theta = pi (the opposite pair), see relu_step_kernel
            np.testing.assert_array_less(np.abs(np.asarray(exact, np.float64) - mc), 5 * se + 2e-4)


def test_special_values_and_finite_gradients_on_the_diagonal():
    x = inputs(31, n=5)
    sq = np.asarray(jnp.sum(x**2, axis=1)) / D
    # theta = 0: E[relu(u)^2] = var/2, E[1{u >= 0}] = 1/2
    np.testing.assert_allclose(np.diag(np.asarray(kernels.relu_nngp(x))), sq / 2, rtol=1e-6)
    np.testing.assert_allclose(np.diag(np.asarray(kernels.relu_step_kernel(x))), 0.5, rtol=1e-6)
    # theta = pi: opposite inputs never both fire
    np.testing.assert_allclose(np.asarray(kernels.relu_nngp(x, -x)).diagonal(), 0.0, atol=1e-6)
    # (the step kernel's slope is infinite at theta = pi: float32 rounding of rho costs ~1e-4, see its docstring)
    np.testing.assert_allclose(np.asarray(kernels.relu_step_kernel(x, -x)).diagonal(), 0.0, atol=2e-4)
    np.testing.assert_allclose(np.asarray(kernels.relu_step_kernel(x, x * 1.0)).diagonal(), 0.5, atol=2e-4)
    # a zero input: relu(0) = 0, and 1{0 >= 0} = 1
    z = jnp.zeros((1, D))
    assert float(kernels.relu_nngp(z, x).max()) == 0.0
    np.testing.assert_allclose(np.asarray(kernels.relu_step_kernel(z, x)), 0.5)
    assert float(kernels.relu_step_kernel(z)[0, 0]) == 1.0
    # gradients stay finite on the diagonal (same object and a rounded copy), at theta = pi and at zero inputs
    def loss(u, v):
        return (jnp.sum(kernels.ntk_infinite(u, bias_var=v)) + jnp.sum(kernels.ntk_infinite(u, u * 1.0))
                + jnp.sum(kernels.relu_nngp(u, -u)) + jnp.sum(kernels.relu_step_kernel(u, -u))
                + jnp.sum(kernels.ntk_infinite(jnp.concatenate([u, jnp.zeros((1, D))]))))

    for v in (0.0, 0.2):
        chex.assert_tree_all_finite(jax.jit(jax.grad(loss, argnums=(0, 1)))(x, v))


def test_polynomial_arccos_parts_match_float64_arccos_near_plus_minus_one():
    """float32 ``pi - arccos(rho)`` and ``sqrt(1 - rho^2)`` (A&S 4.4.46) against float64 ``np.arccos`` of the same
    float32 ``rho``, relative to the value: within 4e-7 (measured 2.0e-7 and 9.7e-8, two float32 ulps), including
    ``rho = +-(1 - 2^-k)``, where ``pi - arccos`` and ``sqrt`` vanish; float64 inputs take ``jnp.arccos`` exactly."""
    near = 1.0 - 2.0 ** -np.arange(1, 25)
    rho = np.concatenate([np.linspace(-1, 1, 20001), near, -near, [-1.0, 0.0, 1.0]]).astype(np.float32)
    pmt, sin = (np.asarray(v, np.float64) for v in jax.jit(infinite.arccos_parts)(jnp.asarray(rho)))
    r = rho.astype(np.float64)
    want_pmt, want_sin = np.pi - np.arccos(r), np.sqrt((1 - r) * (1 + r))
    assert np.all(np.abs(pmt - want_pmt) <= 4e-7 * want_pmt)
    assert np.all(np.abs(sin - want_sin) <= 4e-7 * want_sin)
    with jax.enable_x64(True):
        pmt64, sin64 = infinite.arccos_parts(jnp.asarray(r))
        np.testing.assert_allclose(np.asarray(pmt64), want_pmt, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(np.asarray(sin64), want_sin, rtol=1e-14, atol=1e-15)
    grads = jax.grad(lambda v: jnp.sum(jnp.stack(infinite.arccos_parts(v))))(jnp.asarray([-1.0, 0.0, 1.0]))
    chex.assert_tree_all_finite(grads)


@pytest.mark.parametrize("bias_var", [0.0, 1.0])
def test_float32_kernels_match_the_float64_arccos_reference_including_near_parallel_inputs(bias_var):
    """Each kernel in float32 against its float64 evaluation (``jnp.arccos``): relative error (to the largest entry)
    <= 1e-6 on generic pairs (measured <= 1.6e-7); on pairs at angles 1e-1 .. 1e-4 (parallel and antiparallel) the
    float32 rounding of ``rho`` (~16 eps for d = 16 terms) moves ``theta`` by ``16 eps / sin theta``: the bound."""
    rng = np.random.default_rng(0)
    d, k = 16, 16
    x1 = rng.standard_normal((48, d))
    angles = np.geomspace(1e-1, 1e-4, k)
    perp = rng.standard_normal((k, d))
    perp -= (perp * x1[:k]).sum(1, keepdims=True) / (x1[:k] ** 2).sum(1, keepdims=True) * x1[:k]
    perp *= np.linalg.norm(x1[:k], axis=1, keepdims=True) / np.linalg.norm(perp, axis=1, keepdims=True)
    near = np.cos(angles)[:, None] * x1[:k] + np.sin(angles)[:, None] * perp
    x1 = x1.astype(np.float32)
    x2 = np.concatenate([near, -near, rng.standard_normal((32, d))]).astype(np.float32)
    bound = 1e-6 + 16 * np.finfo(np.float32).eps / (2 * np.pi * np.sin(angles))
    for fn in (kernels.relu_nngp, kernels.relu_step_kernel, kernels.ntk_infinite):
        got = np.asarray(fn(x1, x2, bias_var=bias_var), np.float64)
        with jax.enable_x64(True):
            want = np.asarray(fn(x1.astype(np.float64), x2.astype(np.float64), bias_var=bias_var))
        err = np.abs(got - want) / np.abs(want).max()
        assert err[k:, :].max() <= 1e-6 and err[:, 2 * k:].max() <= 1e-6
        assert np.all(np.diag(err[:k, :k]) <= bound) and np.all(np.diag(err[:k, k:2 * k]) <= bound)


def test_blocked_gram_equals_direct_evaluation():
    x1, x2 = inputs(41, n=23), inputs(42, n=11)
    fn = functools.partial(kernels.ntk_infinite, a_scale=0.5, bias_var=0.2)
    want = fn(x1, x2)
    for block in (1, 5, 23, 100):
        np.testing.assert_allclose(np.asarray(kernels.gram(fn, x1, x2, block_size=block)), np.asarray(want),
                                   rtol=1e-6, atol=1e-6)


# -------------------------------------------------------------------------------------- jit, vmap, shapes
class KernelTransformsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_shapes_dtypes_under_jit(self):
        params = perturbed_network(0, "relu")
        x1, x2 = inputs(1), inputs(2, n=9)
        k = self.variant(lambda p, u, v: kernels.entk_two_layer(p, u, v, block_size=16))(params, x1, x2)
        ks = self.variant(lambda p, u: kernels.entk_two_layer(p, u))(params, x1)
        kinf = self.variant(lambda u, v, s: kernels.ntk_infinite(u, v, a_scale=s, bias_var=0.5))(x1, x2, 2.0)
        chex.assert_shape([k, ks, kinf], [(N, 9), (N, N), (N, 9)])
        chex.assert_type([k, ks, kinf], jnp.float32)
        chex.assert_tree_all_finite((k, ks, kinf))

    def test_vmap_over_seeds_matches_a_loop(self):
        x = inputs(3)
        keys = jax.random.split(jax.random.key(4), 3)
        stacked = jax.vmap(lambda k: network.init_symmetric(k, D, network.NetworkConfig(width=M)))(keys)
        got = jax.vmap(lambda p: kernels.entk_two_layer(p, x, block_size=16))(stacked)
        for i, k in enumerate(keys):
            want = kernels.entk_two_layer(network.init_symmetric(k, D, network.NetworkConfig(width=M)), x)
            assert_rel_close(got[i], want, 1e-6)


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_input_raises_value_error():
    params = perturbed_network(0, "relu")
    x = inputs(0)
    f = restricted_apply("relu", kernels.PARTS)
    with pytest.raises(ValueError, match="same feature shape"):
        kernels.entk_two_layer(params, x, jnp.ones((3, D + 1)))
    with pytest.raises(ValueError, match="network expects d = 8"):
        kernels.entk_two_layer(params, jnp.ones((3, D + 1)))
    with pytest.raises(ValueError, match="empty"):
        kernels.entk_two_layer(params, jnp.ones((0, D)))
    with pytest.raises(ValueError, match="empty"):
        kernels.entk_two_layer(params, x, jnp.ones((0, D)))
    with pytest.raises(ValueError, match="parts"):
        kernels.entk_two_layer(params, x, parts=("W", "c"))
    with pytest.raises(ValueError, match="parts"):
        kernels.ntk_infinite(x, parts=())
    with pytest.raises(ValueError, match="activation"):
        kernels.entk_two_layer(params, x, act="tanh")
    with pytest.raises(ValueError, match="block_size"):
        kernels.entk_two_layer(params, x, block_size=0)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        kernels.relu_nngp(jnp.ones(D))
    with pytest.raises(ValueError, match="same feature shape"):
        kernels.entk(f, params, x, jnp.ones((3, D + 1)))
    with pytest.raises(ValueError, match="empty"):
        kernels.entk(f, params, jnp.ones((0, D)))
    for fn in (kernels.relu_nngp, kernels.relu_step_kernel, kernels.ntk_infinite):
        with pytest.raises(ValueError, match="bias_var"):
            fn(x, bias_var=-0.1)
        with pytest.raises(ValueError, match="same feature shape"):
            fn(x, jnp.ones((2, D + 2)))
        with pytest.raises(ValueError, match="empty"):
            fn(jnp.ones((0, D)), x)
    with pytest.raises(ValueError, match="empty"):
        kernels.gram(kernels.relu_nngp, x, jnp.ones((0, D)))
