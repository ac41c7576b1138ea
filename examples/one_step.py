"""Algorithm 1 on the paper target: one large first-layer step, fresh biases, ridge on the second layer.

Trains 3 seeds at once (vmap) at d = 32 for n = 8 d^2 and 32 d^2 samples and compares with random features (the
same pipeline with the first layer frozen at initialisation).  About a minute on 2 CPU cores.

    python examples/one_step.py
"""

import jax
import numpy as np

from reprjax import network
from reprjax.methods import algorithm1 as algorithm
from reprjax.problem import targets

d = 32
target = targets.paper_target(jax.random.key(0), d, r=2, p=4)
print(target.describe())
keys = jax.random.split(jax.random.key(1), 3)
run = jax.jit(jax.vmap(algorithm.run, in_axes=(0, None, None)))
frozen = jax.jit(jax.vmap(algorithm.random_features, in_axes=(0, None, None)))
for mult in (8, 32):
    config = algorithm.Algorithm1Config(n=mult * d * d, network=network.NetworkConfig(width=1024))
    net, rf = run(keys, target, config), frozen(keys, target, config)
    print(f"n = {mult} d^2 = {config.n:6d}:  Algorithm 1 test error {np.mean(net.test_nmse):.3f} "
          f"(alignment with span(U) {np.mean(net.alignment):.2f});  random features {np.mean(rf.test_nmse):.3f}")
