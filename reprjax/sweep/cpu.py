"""The CPU executor: every decision about OpenBLAS threads and runs side by side on the cores lives here.

On CPU, jaxlib's factorisations call the OpenBLAS that scipy ships, which keeps its own threads next to XLA's.
``auto`` runs a group side by side (``threads``: one ``lax.map`` chunk per core on worker threads, OpenBLAS at one
thread; ``sharded`` over forced host devices, OpenBLAS at one thread) when its runs balance over the workers and
fit in memory together, and the plain loop otherwise, with OpenBLAS at one thread when no factorisation in the run
is large.  The measurements behind each threshold: docs/measurements.md, "Sweep execution on CPU".
"""

from __future__ import annotations

from reprjax.sweep import host_threads
from reprjax.sweep.execution import AUTO_EXECUTION, Executor
from reprjax.sweep.grid import Group

#: Runs side by side only while their working sets together stay under this many bytes.
CPU_THREADS_BYTES = 4 * 2**30
#: A group that is not a multiple of the workers runs side by side only with at least this many runs per worker.
CPU_SPLIT_MIN_RUNS = 4
#: The loop holds OpenBLAS to one thread when no factorisation of a run is larger than this order.
CPU_ONE_THREAD_MAX_FACTOR = 2048


class CpuExecutor(Executor):
    """Host devices: picks loop, threads or sharded per group under ``auto`` and sets OpenBLAS's thread count."""

    def workers(self) -> int:
        """Runs that go side by side: one per host device when there are several, else one per core."""
        return len(self.devices) if len(self.devices) > 1 else host_threads.cpu_cores()

    def auto_path(self, group: Group) -> str:
        workers = self.workers()
        balanced = group.size % workers == 0 or group.size >= CPU_SPLIT_MIN_RUNS * workers
        cost = group.method.cost(group.configs[0], group.d)
        fits = cost.working_set_bytes * workers <= CPU_THREADS_BYTES
        if workers > 1 and group.size > 1 and balanced and fits:
            return "sharded" if len(self.devices) > 1 else AUTO_EXECUTION["cpu"]
        return "loop"

    def blas_limit(self, group: Group, path: str) -> int | None:
        """One thread for host devices running side by side (``sharded``; ``threads`` sets it per worker), and for
        the loop under ``auto`` when the runs' factorisations are small; otherwise OpenBLAS's own choice."""
        if path == "sharded":
            return 1
        if path == "loop" and self.execution == "auto":
            small = group.method.cost(group.configs[0], group.d).largest_factorisation
            return 1 if small <= CPU_ONE_THREAD_MAX_FACTOR else None
        return None
