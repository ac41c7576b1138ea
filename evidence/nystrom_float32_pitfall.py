"""Nystrom normal equations in float32 against reprjax.solvers.nystrom's float64 ones (docs/kernels_at_scale.md,
"Nystrom precision").

    python evidence/nystrom_float32_pitfall.py --d 8 --n 16384 --centres 1024

Paper target, infinite NTK with bias variance 1, noiseless labels; prints the normalised test error of each strength
for the solver (float64 ``H``, ``b`` and solve from float32 kernel blocks) and for the same algebra in float32.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from reprjax.problem import data
from reprjax.kernels import empirical as kernels
from reprjax.solvers import nystrom
from reprjax.problem import targets

LAMBDAS = (1e-7, 1e-6, 1e-5, 1e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=8)
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--centres", type=int, default=1024)
    args = parser.parse_args()
    target = targets.paper_target(jax.random.key(0), args.d)
    x = data.sample_dataset(jax.random.key(1), target, args.n).x
    y = target(x)
    x_test = data.sample_dataset(jax.random.key(2), target, 4096).x
    f_test = target(x_test)

    def kernel(a, b):
        return kernels.ntk_infinite(a, b, bias_var=1.0)

    def nmse(pred):
        return [float(v) for v in jnp.mean((pred - f_test[:, None]) ** 2, axis=0) / jnp.mean(f_test**2)]

    path = jax.jit(lambda x, y: nystrom.nystrom_ridge_path(kernel, x, y, LAMBDAS, args.centres))(x, y)
    print("float64 normal equations:", nmse(nystrom.predict(kernel, x_test, path)))
    # the same algebra in float32: K_MM + jitter = L L^T, A = L^-1 H L^-T, one Cholesky of A + s I per strength
    c = x[: args.centres]
    k = kernel(x, c)
    h, b, kmm = k.T @ k, k.T @ y, kernel(c, c)
    low = jnp.linalg.cholesky(kmm + 1e-6 * jnp.mean(jnp.diag(kmm)) * jnp.eye(args.centres))
    a = jax.scipy.linalg.solve_triangular(low, jax.scipy.linalg.solve_triangular(low, h, lower=True).T, lower=True)
    rhs = jax.scipy.linalg.solve_triangular(low, b, lower=True)
    scale = jnp.mean(jax.vmap(lambda r: kernel(r[None], r[None])[0, 0])(x))
    preds = []
    for lam in LAMBDAS:
        beta = jnp.linalg.solve(a + args.n * lam * scale * jnp.eye(args.centres), rhs)
        coef = jax.scipy.linalg.solve_triangular(low, beta, lower=True, trans=1)
        preds.append(kernel(x_test, c) @ coef)
    print("float32 normal equations:", nmse(jnp.stack(preds, axis=1)))


if __name__ == "__main__":
    main()
