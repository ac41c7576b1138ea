"""reprjax: reproduce and extend Damian, Lee & Soltanolkotabi (COLT 2022) in JAX."""

__version__ = "0.1.0"
