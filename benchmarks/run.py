"""The benchmark harness as plain Python: ``python benchmarks/run.py [--only NAME ...] [--quick]``.

Same as ``reprjax bench``; see :mod:`reprjax.bench.harness` for what is measured and :mod:`reprjax.bench.suite`
for the benchmarks and their FLOP counts.
"""

import sys

from reprjax.bench.suite import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
