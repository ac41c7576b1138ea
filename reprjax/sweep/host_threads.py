"""Independent runs side by side on the CPU cores: one worker thread per core, LAPACK held to one thread.

On CPU, jaxlib's factorisations call the OpenBLAS that scipy ships, which keeps its own threads next to XLA's; with
both pools on the same cores small and medium runs spend their time in contention, while a single large
factorisation wants OpenBLAS's threads.  So :func:`run_split` holds OpenBLAS to one thread only while its workers
run (measurements: docs/measurements.md, "Sweep execution on CPU").  The runs of a worker are looped with
``lax.map``, never vmapped: jaxlib's batched LAPACK kernels can hang when several executions hold XLA's intra-op
pool (docs/measurements.md, "Batched factorisations on host devices").  When to run side by side is decided by the
sweep's CPU executor (:class:`reprjax.sweep.cpu.CpuExecutor`); this module only provides the means.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

T = TypeVar("T")


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity, so a ``taskset`` or container limit is respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Hold the loaded BLAS/LAPACK libraries to ``limit`` threads inside the block (``None``: leave them alone)."""
    if limit is None:
        yield
        return
    if limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    import scipy.linalg  # noqa: F401 - make sure the OpenBLAS that jaxlib's LAPACK calls is loaded, so it is found
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def looped(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` over a leading axis of its arguments, one run after another (``lax.map``): unbatched factorisations."""
    def over_runs(*args: Any) -> T:
        return jax.lax.map(lambda xs: fn(*xs), args)

    return over_runs


def pad_runs(args: Any, multiple: int) -> Any:
    """``args`` (a PyTree of arrays with a leading axis of runs) padded, repeating the last run, to a multiple of
    ``multiple`` runs, so that equal chunks of it share one program shape."""
    pad = -jax.tree.leaves(args)[0].shape[0] % multiple
    if not pad:
        return args
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]), args)


def run_split(program: Callable[..., T], args: tuple[Any, ...], workers: int | None = None) -> T:
    """``program`` (a jitted :func:`looped` function) on the leading axis of ``args``, split over worker threads.

    The runs are padded (repeating the last) to a multiple of ``workers`` so that every worker calls one program
    shape, split into contiguous chunks, run one chunk per thread with OpenBLAS held to one thread, and
    concatenated with the padding dropped.  ``workers`` defaults to one per core and is capped by the run count.
    """
    size = jax.tree.leaves(args)[0].shape[0]
    workers = cpu_cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = max(1, min(workers, size))
    if workers == 1:
        return jax.block_until_ready(program(*args))
    chunk = -(-size // workers)
    args = pad_runs(args, workers)
    parts = [jax.tree.map(lambda a, i=i: a[i * chunk:(i + 1) * chunk], args) for i in range(workers)]
    with blas_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="reprjax-run") as pool:
        outs = list(pool.map(lambda part: jax.block_until_ready(program(*part)), parts))
    return jax.tree.map(lambda *xs: jnp.concatenate(xs)[:size], *outs)
