"""Streamed training samples: keyed rows equal jax's draws, blocks equal the stored samples, streamed sums equal
stored ones, and a run's compiled memory does not grow with n."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.problem import data
from reprjax.problem import streams as streaming
from reprjax.problem import targets
from reprjax.methods.algorithm1 import Algorithm1Config


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), start=st.integers(0, 200), rows=st.integers(1, 40),
       d=st.sampled_from([1, 3, 16, 33]))
def test_normal_rows_are_the_rows_of_jax_random_normal(seed, start, rows, d):
    """Row i depends only on (key, i): any block equals the same rows of one jax.random.normal draw, bit for bit."""
    key = jax.random.key(seed)
    full = jax.random.normal(key, (start + rows, d), jnp.float32)
    block = jax.jit(data.normal_rows, static_argnums=(2, 3))(key, start, rows, d)
    chex.assert_shape(block, (rows, d))
    chex.assert_type(block, jnp.float32)
    np.testing.assert_array_equal(np.asarray(block), np.asarray(full[start:]))


def test_normal_rows_accept_raw_keys_and_vmap():
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    blocks = jax.vmap(lambda k: data.normal_rows(k, 5, 4, 6))(keys)
    for k, b in zip(keys, blocks):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(jax.random.normal(k, (9, 6))[5:]))


def test_row_counters_carry_into_the_high_word():
    """The flat counters (start + i) d + j are exact 64-bit integers past 2^32 (d = 2048 at n = d^2 crosses it)."""
    for start, rows, d in ((2**21 - 1, 3, 2048), (2**31 - 2, 2, 2**16 - 1), (123_456_789, 2, 37)):
        hi, lo = data._row_counters(start, rows, d)
        want = (np.arange(start, start + rows, dtype=np.uint64)[:, None] * np.uint64(d)
                + np.arange(d, dtype=np.uint64)[None, :])
        got = (np.asarray(hi).astype(np.uint64) << np.uint64(32)) | np.asarray(lo).astype(np.uint64)
        np.testing.assert_array_equal(got, want)


def test_sample_rows_block_equals_rows_of_the_stored_draw():
    """A block of the stream is the same samples as the stored draw of any larger n (spike and noise included)."""
    t = targets.paper_target(jax.random.key(0), 12)
    cfg = data.DataConfig(noise=0.3, spike=2.0, spike_direction="random")
    key, spike_key = jax.random.key(1), jax.random.key(2)
    stored = data.sample_dataset(key, t, 300, cfg, spike_key=spike_key)
    block = jax.jit(lambda s: data.sample_rows(key, t, s, 50, cfg, spike_key))(210)
    np.testing.assert_allclose(np.asarray(block.x), np.asarray(stored.x[210:260]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(block.f), np.asarray(stored.f[210:260]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(block.y), np.asarray(stored.y[210:260]), rtol=1e-5, atol=1e-5)


def test_stream_sum_over_a_masked_role_equals_the_masked_stored_sum():
    """Chunks of any size (remainder included) and traced active counts give the stored weighted sum."""
    t = targets.paper_target(jax.random.key(0), 8)
    key = jax.random.key(3)
    stored = data.sample_dataset(key, t, 500)
    role = data.sample_roles(500, 0.2, None, jnp.int32(437)).stage1
    want = (np.asarray(role.weight) * np.asarray(stored.y)) @ np.asarray(stored.x)
    for source in (streaming.KeyedSource(key, t), streaming.ArraySource(stored)):
        for chunk in (64, 77, 1000):
            got = jax.jit(lambda: streaming.stream_sum(lambda b, w: (w * b.y) @ b.x, source, role, chunk))()
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_streamed_run_equals_the_run_on_stored_samples():
    """train_one_step (samples streamed from the key) and train_on_data (the same samples stored) agree."""
    t = targets.paper_target(jax.random.key(0), 8)
    cfg = Algorithm1Config(n=1536, network=network.NetworkConfig(width=64), chunk=256, n_test=512,
                           lambdas=(1e-3, 1e-1))
    key = jax.random.key(4)
    keys = data.split_run_key(key)
    stored = data.sample_dataset(keys.data, t, cfg.n, cfg.data, spike_key=keys.spike)
    for c in (cfg.replace(split_fraction=0.5), cfg.replace(head="gd", gd_steps=100)):
        a = jax.jit(algorithm.train_one_step)(key, t, c)
        b = jax.jit(algorithm.train_on_data)(key, stored, c)
        np.testing.assert_allclose(np.asarray(a.predictor.params.W), np.asarray(b.predictor.params.W), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(a.head.val_mse), np.asarray(b.head.val_mse), rtol=1e-3)


def test_stored_samples_option_gives_the_streamed_run():
    """samples="store" (one draw, held) and the default stream see the same samples: the same network."""
    t = targets.paper_target(jax.random.key(0), 8)
    cfg = Algorithm1Config(n=1024, network=network.NetworkConfig(width=32), chunk=192, n_test=256,
                           lambdas=(1e-3, 1e-1))
    key = jax.random.key(6)
    a = jax.jit(algorithm.train_one_step)(key, t, cfg)
    b = jax.jit(algorithm.train_one_step)(key, t, cfg.replace(samples="store"))
    np.testing.assert_allclose(np.asarray(a.predictor.params.a), np.asarray(b.predictor.params.a), rtol=1e-3,
                               atol=1e-4 * float(np.abs(np.asarray(b.predictor.params.a)).max()))


def test_masked_streamed_run_equals_the_run_with_n_active_samples():
    """Prefix property: n = 1024 masked to 640 active samples is the run with n = 640 (same samples)."""
    t = targets.paper_target(jax.random.key(0), 8)
    cfg = Algorithm1Config(n=640, network=network.NetworkConfig(width=64), chunk=200, n_test=512,
                           lambdas=(1e-3, 1e-1))
    key = jax.random.key(5)
    exact = jax.jit(algorithm.train_one_step)(key, t, cfg)
    masked = jax.jit(algorithm.train_one_step)(key, t, cfg.replace(n=1024, n_active=640))
    np.testing.assert_allclose(np.asarray(masked.predictor.params.W), np.asarray(exact.predictor.params.W),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(masked.head.val_mse), np.asarray(exact.head.val_mse), rtol=1e-3)


def _temp_bytes(fn, *args) -> int:
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_compiled_memory_does_not_grow_with_n():
    """Peak working memory of a whole run (Algorithm 1, transfer) is the same for n and 8 n."""
    d, m = 16, 64
    t = targets.paper_target(jax.random.key(0), d)
    key = jax.random.key(0)
    net = network.NetworkConfig(width=m)
    learned = algorithm.train_one_step(key, t, Algorithm1Config(n=512, network=net, lambdas=(1e-3,), n_test=64))
    sizes = {}
    for n in (131_072, 1_048_576):  # compiled, never run: the inputs alone would take 64 MiB at the larger n
        cfg = Algorithm1Config(n=n, network=net, chunk=1024, n_test=1024, lambdas=(1e-3,), solver="cholesky")
        sizes[n] = [_temp_bytes(algorithm.run, key, t, cfg),
                    _temp_bytes(algorithm.transfer, key, learned.predictor, t, cfg)]
    stored = 1_048_576 * d * 4  # what holding the inputs alone would take at the larger n
    for small, large in zip(sizes[131_072], sizes[1_048_576]):
        assert large <= 1.1 * small + 64 * 1024, sizes
        assert large < stored / 4, sizes
