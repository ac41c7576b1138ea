"""Neural tangent kernels of the two-layer network: empirical (closed form and generic) and infinite width.

docs/setting.md, "What the paper proves": kernel methods, the NTK of this very network included, need ``n ~ d^p``
samples for a degree-p target.  This module builds those kernels.

* :func:`entk_two_layer`: the empirical NTK of ``f(x) = sum_j a_j act(<w_j, x> + b_j)`` in closed form.  With
  ``Z = x W^T + b``, ``D = act'(Z)``, ``Phi = act(Z)`` and ``G = D1 diag(a^2) D2^T``,

      K = (x1 x2^T) * G  [W part]  +  Phi1 Phi2^T  [a part]  +  G  [b part],

  about ``2 n1 n2 (2m + d)`` FLOPs instead of the ``2 n1 n2 m (d + 2)`` of a Jacobian contraction.  Hidden units are
  processed in blocks (``lax.scan``), so memory is ``O(n1 n2 + (n1 + n2) * block_size)``: never ``n x m x d``.
* :func:`entk`: the generic empirical NTK ``sum_leaves J1 J2^T`` of any ``apply_fn(params, x) -> (n,)``, from
  per-sample gradients in blocks of rows (the reference the closed form is checked against).
* :func:`relu_nngp`, :func:`relu_step_kernel`, :func:`ntk_infinite`: the infinite-width kernels, defined in
  :mod:`reprjax.kernels.infinite` and exported here.

When ``x2`` is omitted (or is the same object as ``x1``) the Gram matrix is symmetric and only its upper block
triangle is computed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from reprjax import _validate
from reprjax.kernels.inputs import PARTS, _check_inputs, _check_parts
from reprjax.kernels.infinite import ntk_infinite, relu_nngp, relu_step_kernel
from reprjax.network import TwoLayerParams, activation, activation_derivative

#: Default number of hidden units per block of :func:`entk_two_layer` (docs/measurements.md, "Empirical NTK blocks").
HIDDEN_BLOCK = 1024
#: Default rows per strip of the symmetric :func:`entk_two_layer` (same measurement).
ROW_BLOCK = 512
#: Default rows per Jacobian block of the generic :func:`entk`.
JACOBIAN_BLOCK = 256
#: Columns per chunk of the Jacobian contraction (keeps each matmul cache-friendly; measured).
_CONTRACT_CHUNK = 1024


# ------------------------------------------------------------------------------------------------ helpers
def _check_block(name: str, value: int) -> int:
    return _validate.check_int(name, value, low=1)


def _abt(u: Array, v: Array, precision: Any = None) -> Array:
    """``u @ v^T`` without materialising the transpose."""
    return lax.dot_general(u, v, (((1,), (1,)), ((), ())), precision=precision)


# ------------------------------------------------------------------------------------ closed-form two-layer eNTK
def _scan_hidden(params: TwoLayerParams, block: int, step: Callable, carry: Any) -> Any:
    """Fold ``step(carry, a_blk, W_blk, b_blk)`` over blocks of hidden units (full blocks by scan, then the rest)."""
    a, W, b = params.a, params.W, params.b
    m, d = W.shape
    nb, rem = divmod(m, block)
    if nb == 1:
        carry = step(carry, a[:block], W[:block], b[:block])
    elif nb > 1:
        full = nb * block
        blocks = (a[:full].reshape(nb, block), W[:full].reshape(nb, block, d), b[:full].reshape(nb, block))
        carry = lax.scan(lambda c, blk: (step(c, *blk), None), carry, blocks)[0]
    if rem:
        carry = step(carry, a[nb * block :], W[nb * block :], b[nb * block :])
    return carry


def _block_features(act: str, parts: tuple[str, ...], a, W, b, x, precision):
    """``(D, Phi)`` of one block of hidden units (``None`` for what ``parts`` does not need)."""
    z = _abt(x, W, precision) + b
    need_g = "W" in parts or "b" in parts
    return (activation_derivative(act)(z) if need_g else None), (activation(act)(z) if "a" in parts else None)


def _combine(parts: tuple[str, ...], xx: Array, g: Array | None, p: Array | None) -> Array:
    out = 0.0
    if "W" in parts and "b" in parts:
        out = (xx + 1.0) * g
    elif "W" in parts:
        out = xx * g
    elif "b" in parts:
        out = g
    return out + p if p is not None else out


@functools.partial(jax.jit, static_argnames=("act", "parts", "block", "precision"))
def _entk_two_layer_plain(params, x1, x2, act, parts, block, precision):
    n1, n2 = x1.shape[0], x2.shape[0]
    need_g, need_p = ("W" in parts or "b" in parts), "a" in parts
    zeros = jnp.zeros((n1, n2), jnp.float32)
    init = (zeros if need_g else None, zeros if need_p else None)

    def step(carry, a, W, b):
        g, p = carry
        d1, phi1 = _block_features(act, parts, a, W, b, x1, precision)
        d2, phi2 = _block_features(act, parts, a, W, b, x2, precision)
        if need_g:
            g = g + _abt(d1 * (a * a), d2, precision)
        if need_p:
            p = p + _abt(phi1, phi2, precision)
        return g, p

    g, p = _scan_hidden(params, block, step, init)
    xx = _abt(x1, x2, precision) if "W" in parts else None
    return _combine(parts, xx, g, p)


@functools.partial(jax.jit, static_argnames=("act", "parts", "block", "rows", "precision"))
def _entk_two_layer_symmetric(params, x, act, parts, block, rows, precision):
    n = x.shape[0]
    need_g, need_p = ("W" in parts or "b" in parts), "a" in parts
    strips = [(s, min(s + rows, n)) for s in range(0, n, rows)]  # strip i: rows [s, e), columns [s, n)
    init = [
        (jnp.zeros((e - s, n - s), jnp.float32) if need_g else None,
         jnp.zeros((e - s, n - s), jnp.float32) if need_p else None)
        for s, e in strips
    ]

    def step(carry, a, W, b):
        dd, phi = _block_features(act, parts, a, W, b, x, precision)
        da = dd * jnp.abs(a) if need_g else None  # G = (D |a|) (D |a|)^T: one feature array fewer
        out = []
        for (s, e), (g, p) in zip(strips, carry):
            g = g + _abt(da[s:e], da[s:], precision) if need_g else None
            p = p + _abt(phi[s:e], phi[s:], precision) if need_p else None
            out.append((g, p))
        return out

    acc = _scan_hidden(params, block, step, init)
    # Assemble in place: each upper strip is written into one (n, n) buffer, then each strip's part left of the
    # diagonal is copied from the transpose of the column slab above it (fastest measured, docs/measurements.md,
    # "Empirical NTK blocks").  The barrier keeps XLA from recomputing transposed pieces by other (differently
    # rounded) dots, and the diagonal block is mirrored from its upper triangle: the result is exactly symmetric.
    out = jnp.zeros((n, n), jnp.float32)
    for (s, e), (g, p) in zip(strips, acc):
        xx = _abt(x[s:e], x[s:], precision) if "W" in parts else None
        k = lax.optimization_barrier(_combine(parts, xx, g, p))
        diag = k[:, : e - s]
        out = lax.dynamic_update_slice(out, jnp.where(jnp.triu(jnp.ones(diag.shape, bool)), diag, diag.T), (s, s))
        if e < n:
            out = lax.dynamic_update_slice(out, k[:, e - s :], (s, e))
    for s, e in strips[1:]:
        out = lax.dynamic_update_slice(out, out[:s, s:e].T, (s, 0))
    return out


def entk_two_layer(
    params: TwoLayerParams,
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    act: str = "relu",
    parts: Sequence[str] = PARTS,
    block_size: int = HIDDEN_BLOCK,
    row_block_size: int = ROW_BLOCK,
    precision: Any = None,
) -> Float[Array, "n1 n2"]:
    """Empirical NTK ``sum_theta df(x1)/dtheta df(x2)/dtheta`` of the two-layer network, in closed form.

    docs/setting.md, "What the paper proves" (the NTK baseline); the module docstring gives the formula.  Hidden units
    are folded in blocks of ``block_size`` by ``lax.scan`` (two matmuls per block), memory ``O(n1 n2 + (n1 + n2)
    block_size)``.  When ``x2`` is ``None`` or ``x1`` itself, only the upper block triangle (strips of
    ``row_block_size`` rows) is computed and mirrored.  ReLU uses ``act'(z) = 1{z >= 0}``
    (:func:`reprjax.network.activation_derivative`).

    Args:
      params: the network (``a (m,)``, ``W (m, d)``, ``b (m,)``).
      x1: ``(n1, d)`` inputs.
      x2: ``(n2, d)`` inputs, or ``None`` for the symmetric Gram matrix of ``x1``.
      act: activation name (static).
      parts: which parameter groups contribute, a non-empty subset of ``("W", "a", "b")`` (static).
      block_size: hidden units per block (static).
      row_block_size: rows per strip in the symmetric case (static).
      precision: ``lax.Precision`` of the matmuls (``None``: backend default; on GPUs ask for ``"highest"`` to
        avoid TF32).

    Returns:
      ``(n1, n2)`` float32 kernel matrix.
    """
    parts = _check_parts(parts)
    activation(act)
    _check_block("block_size", block_size)
    _check_block("row_block_size", row_block_size)
    symmetric = _check_inputs(x1, x2, d=params.W.shape[-1])
    x1 = jnp.asarray(x1, jnp.float32)
    if symmetric:
        return _entk_two_layer_symmetric(params, x1, act, parts, block_size, row_block_size, precision)
    return _entk_two_layer_plain(params, x1, jnp.asarray(x2, jnp.float32), act, parts, block_size, precision)


# ----------------------------------------------------------------------------------------------- generic eNTK
def _row_blocks(x: Array, block: int) -> Array:
    """``x (n, ...)`` -> ``(ceil(n / block), block, ...)``, the last block padded by repeating the last row."""
    n = x.shape[0]
    nb = -(-n // block)
    pad = nb * block - n
    if pad:
        x = jnp.concatenate([x, jnp.broadcast_to(x[-1:], (pad,) + x.shape[1:])], axis=0)
    return x.reshape((nb, block) + x.shape[1:])


def _chunked_abt(u: Array, v: Array, precision: Any) -> Array:
    """``u @ v^T`` for ``(B1, P)``, ``(B2, P)`` with large ``P``, summed over column chunks (cache-friendly)."""
    p = u.shape[1]
    nc, rem = divmod(p, _CONTRACT_CHUNK)
    if nc <= 1:
        return _abt(u, v, precision)

    def body(i, acc):
        start = i * _CONTRACT_CHUNK
        ui = lax.dynamic_slice_in_dim(u, start, _CONTRACT_CHUNK, axis=1)
        vi = lax.dynamic_slice_in_dim(v, start, _CONTRACT_CHUNK, axis=1)
        return acc + _abt(ui, vi, precision)

    acc = lax.fori_loop(0, nc, body, jnp.zeros((u.shape[0], v.shape[0]), jnp.result_type(u, v)))
    if rem:
        acc = acc + _abt(u[:, nc * _CONTRACT_CHUNK :], v[:, nc * _CONTRACT_CHUNK :], precision)
    return acc


@functools.partial(jax.jit, static_argnames=("apply_fn", "block", "symmetric", "precision"))
def _entk_generic(apply_fn, params, x1, x2, block, symmetric, precision):
    n1, n2 = x1.shape[0], x2.shape[0]
    b1, b2 = min(block, n1), min(block, n2)
    xb1, xb2 = _row_blocks(x1, b1), _row_blocks(x2, b2)
    per_sample = jax.vmap(jax.grad(lambda p, xi: apply_fn(p, xi[None])[0]), in_axes=(None, 0))

    def jac(xb):
        return [leaf.reshape(leaf.shape[0], -1) for leaf in jax.tree.leaves(per_sample(params, xb))]

    def contract(j1, j2):
        return sum(_chunked_abt(u, v, precision) for u, v in zip(j1, j2))

    def row(args):
        i, xi = args
        ji = jac(xi)

        dtype = jnp.result_type(*ji)

        def col(args2):
            j, xj = args2
            if not symmetric:
                return contract(ji, jac(xj))
            # upper blocks only: skip j < i (mirrored below), reuse J_i on the diagonal
            branches = (lambda: jnp.zeros((b1, b2), dtype), lambda: contract(ji, ji).astype(dtype),
                        lambda: contract(ji, jac(xj)).astype(dtype))
            return lax.switch(jnp.where(j < i, 0, jnp.where(j == i, 1, 2)), branches)

        return lax.map(col, (jnp.arange(xb2.shape[0]), xb2))

    kb = lax.map(row, (jnp.arange(xb1.shape[0]), xb1))  # (nb1, nb2, b1, b2)
    if symmetric:
        idx = jnp.arange(kb.shape[0])
        upper = (idx[None, :] >= idx[:, None])[:, :, None, None]
        kb = jnp.where(upper, kb, jnp.transpose(kb, (1, 0, 3, 2)))
    k = jnp.transpose(kb, (0, 2, 1, 3)).reshape(kb.shape[0] * b1, kb.shape[1] * b2)[:n1, :n2]
    return 0.5 * (k + k.T) if symmetric else k


def entk(
    apply_fn: Callable[[Any, Array], Array],
    params: Any,
    x1: Float[Array, "n1 ..."],
    x2: Float[Array, "n2 ..."] | None = None,
    block_size: int = JACOBIAN_BLOCK,
    precision: Any = None,
) -> Float[Array, "n1 n2"]:
    """Generic empirical NTK ``sum_leaves J(x1) J(x2)^T`` of any ``apply_fn(params, x) -> (n,)``.

    docs/setting.md, "What the paper proves" (the NTK baseline), for networks without a closed form and to check
    :func:`entk_two_layer`.  Per-sample gradients (``vmap`` of ``grad``: measured far faster than ``jacrev`` of the
    batch, docs/measurements.md "Empirical NTK blocks"; NTK-vector products cost more FLOPs for MLPs) of ``block_size``
    rows at a time are contracted leaf by leaf over column chunks, so memory is ``O(n1 n2 + block_size * P)`` for ``P``
    parameters.  ``apply_fn`` must treat rows independently; it is a static argument of ``jit`` (pass the same function
    object to avoid recompiling).

    Args:
      apply_fn: ``(params, x (n, ...)) -> (n,)``.
      params: any PyTree of float arrays.
      x1: ``(n1, ...)`` inputs.
      x2: ``(n2, ...)`` inputs, or ``None`` for the symmetric Gram matrix of ``x1`` (upper blocks only).
      block_size: rows per Jacobian block (static).
      precision: ``lax.Precision`` of the contractions.

    Returns:
      ``(n1, n2)`` kernel matrix.
    """
    _check_block("block_size", block_size)
    symmetric = _check_inputs(x1, x2, matrix=False)
    x1 = jnp.asarray(x1)
    x2 = x1 if symmetric else jnp.asarray(x2)
    return _entk_generic(apply_fn, params, x1, x2, block_size, symmetric, precision)


def gram(
    kernel_fn: Callable[[Array, Array], Array],
    x1: Float[Array, "n1 ..."],
    x2: Float[Array, "n2 ..."],
    block_size: int = 1024,
) -> Float[Array, "n1 n2"]:
    """``kernel_fn(x1, x2)`` evaluated in blocks of ``block_size`` rows of ``x1`` (``lax.map``), bounding the
    temporaries of elementwise kernels to ``O(block_size * n2)`` (the blocked Gram builders, docs/architecture.md).

    Args:
      kernel_fn: ``(xa (B, ...), xb (n2, ...)) -> (B, n2)``, e.g. ``functools.partial(ntk_infinite, a_scale=1.0)``.
      x1: ``(n1, ...)`` inputs.
      x2: ``(n2, ...)`` inputs.
      block_size: rows per block.

    Returns:
      ``(n1, n2)`` kernel matrix.
    """
    _check_block("block_size", block_size)
    _check_inputs(x1, x2, matrix=False)
    n1 = x1.shape[0]
    blocks = _row_blocks(jnp.asarray(x1), min(block_size, n1))
    out = lax.map(lambda xb: kernel_fn(xb, x2), blocks)
    return out.reshape(-1, out.shape[-1])[:n1]


__all__ = ["PARTS", "entk", "entk_two_layer", "gram", "ntk_infinite", "relu_nngp", "relu_step_kernel"]
