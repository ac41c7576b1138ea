"""The two-layer network ``f(x) = sum_j a_j act(<w_j, x> + b_j)`` and its symmetric initialisation.

docs/setting.md, "The network": neurons come in pairs with equal ``(w_j, b_j)`` and opposite ``a_j``, so
``f(x; theta_0) = 0`` for every ``x``.  Defaults are the paper's: ``a_j = +-1`` (no width normalisation),
``w_j ~ N(0, I_d / d)``, ``b = 0``.  Options: rows uniform on the unit sphere, output weights ``+-1/sqrt(m)`` or
``+-1/m``, Gaussian biases.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jaxtyping import Array, Float, PRNGKeyArray

from reprjax import _validate
from reprjax.problem.data import Role
from reprjax.problem.streams import SampleSource, stream_sum


def _poly(z: Array) -> Array:
    """A degree-3 polynomial activation ``z + z^2/2 + z^3/6`` (smooth, every Hermite degree <= 3 present)."""
    return z + 0.5 * z**2 + z**3 / 6.0


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "gelu": jax.nn.gelu,
    "poly": _poly,
}

_DERIVATIVES: dict[str, Callable[[Array], Array]] = {
    # 1{z >= 0}, the convention of the paper's closed form (docs/setting.md, "Algorithm 1"); equal a.e. to jax's relu'
    "relu": lambda z: (z >= 0).astype(z.dtype),
    "softplus": jax.nn.sigmoid,
    "poly": lambda z: 1.0 + z + 0.5 * z**2,
}

INITS = ("gaussian", "sphere")
OUTPUT_SCALES = ("none", "sqrt", "mean")


def activation(name: str) -> Callable[[Array], Array]:
    """The elementwise activation called ``name`` (one of ``ACTIVATIONS``)."""
    _validate.check_choice("activation", name, tuple(ACTIVATIONS))
    return ACTIVATIONS[name]


def activation_derivative(name: str) -> Callable[[Array], Array]:
    """Elementwise derivative of the activation ``name`` (closed form, or a forward-mode jvp of it)."""
    fn = activation(name)
    if name in _DERIVATIVES:
        return _DERIVATIVES[name]
    return lambda z: jax.jvp(fn, (z,), (jnp.ones_like(z),))[1]


@struct.dataclass
class TwoLayerParams:
    """Parameters of the two-layer network: output weights ``a (m,)``, first layer ``W (m, d)``, biases ``b (m,)``."""

    a: Float[Array, " m"]
    W: Float[Array, "m d"]
    b: Float[Array, " m"]

    @property
    def width(self) -> int:
        return int(self.a.shape[-1])


@struct.dataclass
class NetworkConfig:
    """Architecture and initialisation (all static: jit specialises on them).

    Attributes:
      width: ``m``, even and >= 2 (neurons come in symmetric pairs).
      activation: one of ``ACTIVATIONS`` (``relu`` as in the paper).
      init: ``gaussian`` (``w ~ N(0, I_d/d)``, the paper's) or ``sphere`` (uniform on the unit sphere).
      output_scale: ``none`` (``a = +-1``, the paper's), ``sqrt`` (``+-1/sqrt(m)``) or ``mean`` (``+-1/m``).
      init_bias_scale: standard deviation of the initial biases (0, the paper's, gives ``b = 0``).
    """

    width: int = struct.field(pytree_node=False, default=1024)
    activation: str = struct.field(pytree_node=False, default="relu")
    init: str = struct.field(pytree_node=False, default="gaussian")
    output_scale: str = struct.field(pytree_node=False, default="none")
    init_bias_scale: float = struct.field(pytree_node=False, default=0.0)

    def __post_init__(self) -> None:
        width = _validate.check_int("width", self.width, low=2)
        if width % 2:
            raise ValueError(f"width must be even for symmetric initialisation (pairs of neurons), got {width}")
        _validate.check_choice("activation", self.activation, tuple(ACTIVATIONS))
        _validate.check_choice("init", self.init, INITS)
        _validate.check_choice("output_scale", self.output_scale, OUTPUT_SCALES)
        _validate.check_number("init_bias_scale", self.init_bias_scale, low=0.0)

    @property
    def a_scale(self) -> float:
        """``|a_j|`` at initialisation."""
        return {"none": 1.0, "sqrt": self.width**-0.5, "mean": 1.0 / self.width}[self.output_scale]


def init_symmetric(key: PRNGKeyArray, d: int, config: NetworkConfig = NetworkConfig()) -> TwoLayerParams:
    """Symmetric initialisation: ``m/2`` neurons drawn, each duplicated with the opposite output weight.

    Neuron ``j`` and ``j + m/2`` share ``(w_j, b_j)`` and have ``a_{j + m/2} = -a_j``, so the network is exactly
    zero at initialisation.
    """
    _validate.check_int("d", d, low=1)
    half = config.width // 2
    k_w, k_b = jax.random.split(key)
    w = _directions(k_w, half, d, config.init)
    b = config.init_bias_scale * jax.random.normal(k_b, (half,), jnp.float32)
    a = jnp.full((half,), config.a_scale, jnp.float32)
    return TwoLayerParams(
        a=jnp.concatenate([a, -a]), W=jnp.concatenate([w, w], axis=0), b=jnp.concatenate([b, b])
    )


def init_independent(key: PRNGKeyArray, d: int, config: NetworkConfig = NetworkConfig()) -> TwoLayerParams:
    """``m`` independent neurons drawn as :func:`init_symmetric` draws each pair (the random-features first layer).

    Rows ``w_j`` are independent (``N(0, I_d/d)`` or uniform on the sphere, per ``config.init``), biases
    ``N(0, init_bias_scale^2)``, output weights alternate ``+-a_scale`` (the network is not zero at initialisation).
    """
    _validate.check_int("d", d, low=1)
    m = config.width
    k_w, k_b = jax.random.split(key)
    w = _directions(k_w, m, d, config.init)
    b = config.init_bias_scale * jax.random.normal(k_b, (m,), jnp.float32)
    a = config.a_scale * jnp.where(jnp.arange(m) % 2 == 0, 1.0, -1.0).astype(jnp.float32)
    return TwoLayerParams(a=a, W=w, b=b)


def _directions(key: PRNGKeyArray, count: int, d: int, init: str) -> Array:
    w = jax.random.normal(key, (count, d), jnp.float32)
    if init == "gaussian":
        return w / jnp.sqrt(jnp.float32(d))
    return w / jnp.linalg.norm(w, axis=1, keepdims=True)


def preactivations(params: TwoLayerParams, x: Float[Array, "n d"]) -> Float[Array, "n m"]:
    """``Z = x W^T + b``."""
    if x.shape[-1] != params.W.shape[-1]:
        raise ValueError(f"x has dimension {x.shape[-1]} but the network expects d = {params.W.shape[-1]}")
    return x @ params.W.T + params.b


def features(params: TwoLayerParams, x: Float[Array, "n d"], act: str = "relu") -> Float[Array, "n m"]:
    """Hidden features ``act(x W^T + b)`` (the random-features design matrix of the second-layer fit)."""
    return activation(act)(preactivations(params, x))


def forward(params: TwoLayerParams, x: Float[Array, "n d"], act: str = "relu") -> Float[Array, " n"]:
    """``f(x) = sum_j a_j act(<w_j, x> + b_j)``, batched over the rows of ``x``."""
    return features(params, x, act) @ params.a


def chunk_gradient(
    params: TwoLayerParams, x: Float[Array, "k d"], y: Float[Array, " k"], w: Float[Array, " k"], act: str
) -> Float[Array, "m d"]:
    """``grad_W sum_i w_i (f(x_i) - y_i)^2`` on one block, by ``jax.grad``."""

    def loss_sum(W):
        return jnp.sum(w * (forward(params.replace(W=W), x, act) - y) ** 2)

    return jax.grad(loss_sum)(params.W)


def stream_square_loss_gradient(
    params: TwoLayerParams, source: SampleSource, role: Role, act: str = "relu", chunk: int = 16384
) -> Float[Array, "m d"]:
    """``grad_W L`` for ``L = (1/n) sum_i w_i (f(x_i) - y_i)^2`` over the role's rows, streamed.

    Memory ``O(chunk * (d + m) + m d)``.
    """
    grad, n = stream_sum(lambda b, w: (chunk_gradient(params, b.x, b.y, w, act), jnp.sum(w)), source, role, chunk)
    return grad / n
