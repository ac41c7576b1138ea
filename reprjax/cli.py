"""The ``reprjax`` command line: parses arguments and calls the library (DESIGN.md: cli only parses and calls)."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from reprjax import data, network, targets

    key = jax.random.key(args.seed)
    k_t, k_d, k_n = jax.random.split(key, 3)
    target = targets.paper_target(k_t, args.d, r=args.r, p=args.p)
    print(target.describe())
    ds = data.sample_dataset(k_d, target, 4096, data.DataConfig())
    f2 = ds.f**2
    print(f"  Monte Carlo check on 4096 samples: mean f* = {float(ds.f.mean()):+.4f}, mean f*^2 = "
          f"{float(f2.mean()):.4f} +- {float(f2.std()) / 64:.4f} (standard error; f*^2 is heavy-tailed)")
    cfg = network.NetworkConfig(width=args.width)
    params = network.init_symmetric(k_n, args.d, cfg)
    out = network.forward(params, ds.x, cfg.activation)
    feats = network.features(params, ds.x, cfg.activation)
    print(f"Two-layer ReLU network, m = {cfg.width}, symmetric init: max |f(x)| over 4096 inputs = "
          f"{float(jnp.max(jnp.abs(out))):.2e} (exactly zero up to float32 rounding), "
          f"mean feature {float(feats.mean()):.4f} (E relu(N(0,1)) = {1 / np.sqrt(2 * np.pi):.4f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a small end-to-end look at a target and the initial network")
    demo.add_argument("--d", type=int, default=32, help="input dimension (default 32)")
    demo.add_argument("--r", type=int, default=2, help="number of hidden directions (default 2)")
    demo.add_argument("--p", type=int, default=4, help="degree of the target (default 4)")
    demo.add_argument("--width", type=int, default=1024, help="network width m (default 1024)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"reprjax: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
