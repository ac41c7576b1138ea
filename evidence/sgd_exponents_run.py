"""The default run of docs/sgd_exponents.md: the float32 matmul roofline, the study at its default config, its wall
time, and the roofline again (the cores may be shared: both are printed)."""

import sys
import time

from reprjax import cli
from reprjax.bench.harness import device_label, matmul_roofline

out = sys.argv[1] if len(sys.argv) > 1 else "runs/sgd-exponents"
before = matmul_roofline()
print(f"roofline before: {before['gflops']:.1f} GFLOP/s float32 matmul ({before['size']}^3) on {device_label()}")
t0 = time.perf_counter()
code = cli.main(["run", "sgd-exponents", "--config", "examples/sgd_exponents.toml", "--out", out, "--no-progress"])
wall = time.perf_counter() - t0
after = matmul_roofline()
print(f"study wall time {wall:.0f} s; roofline after: {after['gflops']:.1f} GFLOP/s float32 matmul")
sys.exit(code)
