"""FLOP counts of what the benchmarked programs perform (:mod:`reprjax.bench.suite`, :mod:`reprjax.bench.entk_forms`,
:mod:`reprjax.bench.kernel_scale`).

Every matrix product ``(a x b) @ (b x c)`` counts ``2abc``; an eigh of a ``k x k`` matrix ``9 k^3``, a Cholesky
factorisation ``k^3 / 3``, a triangular solve with ``c`` right-hand sides ``k^2 c`` (``2 k^2`` for one); elementwise
work (the kernels' arc-cosines, conversions) is not counted.  Where the issue's own FLOP convention differs (it counts
3 products of the data with ``W`` for the step, where reverse mode performs 2, and ``n m^2`` for a Gram matrix that a
plain matmul computes in ``2 n m^2``), the benchmark rows' notes give the other figure too.
"""

from __future__ import annotations

from reprjax.solvers import ridge


def entk_closed_flops(n1: int, n2: int, m: int, d: int, rows: int | None) -> tuple[float, float]:
    """(FLOPs performed, nominal ``2 n1 n2 (2m + d)``) of :func:`kernels.entk_two_layer`.

    Performed: pre-activations ``x W^T`` once per distinct input, plus per computed output entry ``2m`` for
    ``D1 diag(a^2) D2^T``, ``2m`` for ``Phi1 Phi2^T`` and ``2d`` for ``x1 x2^T``; the symmetric path computes
    strips of ``rows`` rows from the diagonal rightwards.
    """
    nominal = 2.0 * n1 * n2 * (2 * m + d)
    if rows is None:
        return 2.0 * (n1 + n2) * m * d + 2.0 * n1 * n2 * (2 * m + d), nominal
    entries = sum((min(s + rows, n1) - s) * (n1 - s) for s in range(0, n1, rows))
    return 2.0 * n1 * m * d + 2.0 * entries * (2 * m + d), nominal


def entk_generic_flops(n: int, block: int, p: int) -> float:
    """Contraction FLOPs of the symmetric generic eNTK: upper blocks (diagonal included) of ``block`` rows."""
    nb = -(-n // block)
    return 2.0 * (nb * (nb + 1) // 2) * block * block * p


def solve_flops(k: int, strengths: int, solver: str, precision: str = "refined") -> float:
    if solver == "auto":
        solver = ridge.pick_solver(k, strengths, precision)
    if solver == "eigh":
        return 9.0 * k**3 + 2.0 * 2 * k * k + 2.0 * k * k * strengths
    return strengths * (k**3 / 3.0 + 2.0 * k * k)


def one_step_flops(n: int, d: int, m: int, strengths: int, val_fraction: float = 0.2,
                   solver: str = "auto") -> dict[str, float]:
    """FLOPs Algorithm 1's training performs (shared samples, primal ridge), and the issue's convention."""
    n_val = max(1, round(val_fraction * n))
    n_fit = n - n_val
    step = 2 * (2.0 * n_fit * m * d)  # forward x W^T, backward dZ^T x
    feats = 2.0 * n * m * d  # fit and validation features
    gram = 2.0 * n_fit * m * m + 2.0 * n_fit * m
    solve = solve_flops(m, strengths, solver)
    val = 2.0 * n_val * m * strengths
    issue = 3 * 2.0 * n * m * d + 2.0 * n * m * d + n * m * m + solve_flops(m, strengths, solver)
    return dict(performed=step + feats + gram + solve + val, issue_convention=issue)


def normal_equation_flops(n: int, m: int, d: int) -> float:
    """The direct Nystrom accumulation (:func:`reprjax.solvers.nystrom.normal_equations`): ``H = K_nM^T K_nM``
    (``2 n M^2``, float64), ``b`` (``2 n M``) and the kernel's inner products (``2 n M d``)."""
    return 2.0 * n * m * m + 2.0 * n * m + 2.0 * n * m * d


def nystrom_solve_flops(m: int, strengths: int) -> float:
    """:func:`reprjax.solvers.nystrom.solve_path` by Cholesky: ``K_MM = L L^T`` (``M^3 / 3``), ``A = L^{-1} H L^{-T}``
    (two triangular solves with ``M`` right-hand sides, ``2 M^3``), then per strength a Cholesky of ``A + s I``
    and three triangular solves with one right-hand side."""
    return m**3 / 3.0 + 2.0 * m**3 + strengths * (m**3 / 3.0 + 3 * 2.0 * m * m)


def falkon_setup_flops(m: int, strengths: int) -> float:
    """:func:`reprjax.solvers.falkon.falkon_ridge_path` outside its CG iterations: ``K_MM = L L^T`` (``M^3 / 3``),
    ``T = L^T L`` (a product, ``2 M^3``) and per strength a Cholesky of ``c T + s I`` (``M^3 / 3``)."""
    return m**3 / 3.0 + 2.0 * m**3 + strengths * m**3 / 3.0


def falkon_iteration_flops(n: int, m: int, columns: int = 1) -> float:
    """One falkon CG update for ``columns`` strengths at once (``1`` for ``strategy="path"``): the pass over the
    kernel blocks, ``K_b v`` and ``K_b^T [u, y]`` (``2 n M columns + 2 n M (columns + 1)``), and the preconditioner's
    triangular solves (``R^{-T}``, ``L^{-T}``: one column each per strength; ``L^{-1}``: ``columns + 1``; ``R^{-1}``:
    two per strength), ``2 M^2`` per column."""
    return 2.0 * n * m * columns + 2.0 * n * m * (columns + 1) + 2.0 * m * m * (2 * columns + columns + 1 + 2 * columns)


__all__ = ["entk_closed_flops", "entk_generic_flops", "falkon_iteration_flops", "falkon_setup_flops",
           "normal_equation_flops", "nystrom_solve_flops", "one_step_flops", "solve_flops"]
