"""Independent runs side by side on the CPU cores: one worker thread per core, LAPACK held to one thread.

On CPU, jaxlib's factorisations (eigh, Cholesky) call the OpenBLAS that scipy ships, which keeps its own pool of
threads next to XLA's.  With both pools on the same cores, small and medium runs spend their time in contention.
Measured on 2 cores (d = 16, n = 2048, m = 256, one step plus ridge over 10 strengths, 64 runs): a loop of jitted
runs made 94-115 configs/s, the same loop with OpenBLAS at one thread 109-161, single jitted runs on two worker
threads with OpenBLAS at one thread 177-235, and the runs split into one ``lax.map`` program per worker (what
:func:`run_split` does: no Python dispatch per run) 246.  Larger runs gain too (full Algorithm 1 run with a
2,000-sample test set, single runs on two threads): d = 24, n = 4608, m = 512: 14.7 -> 29.3 runs/s; d = 64,
n = 16384, m = 512: 6.0 -> 7.7; eNTK ridge at n = 2304: 2.1 -> 3.3.  A single large factorisation, on the other
hand, wants OpenBLAS's threads (a float32 Cholesky at k = 8192: 1.8 s with two threads, 2.8 s with one), so the
limit is set only while several workers run, and lifted afterwards.

The runs of a worker are looped with ``lax.map``, never vmapped: jaxlib's batched LAPACK kernels wait on XLA's
intra-op pool and hang when several executions hold it at once (see :func:`reprjax.sweep.sharded_program`); a
single factorisation does not.  Concurrent first calls of one jitted program compile it once (jax deduplicates).
The limit uses threadpoolctl, the maintained way to set the thread count of a loaded BLAS at run time.
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
