"""Studies: config -> sweep -> table -> report and figures (docs/architecture.md: studies compose the layers below).

Each module exposes ``NAME``, a frozen validated ``Config`` (read from TOML by :func:`base.config_from_dict`),
``grid(config)``, ``summarise(df, config)``, ``report(summary, config)`` and ``plot(df, config, out_dir)``.
"""

from reprjax.studies import (alignment, beyond_one_step, information_exponent, large_d, sample_complexity,
                                 sgd_exponents, spiked_covariance, transfer)

STUDIES = {m.NAME: m for m in (sample_complexity, transfer, alignment, information_exponent, spiked_covariance,
                                   beyond_one_step, large_d, sgd_exponents)}

__all__ = ["STUDIES"]
