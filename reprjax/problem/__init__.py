"""The learning problem: multi-index targets and links of z = Ux, Gaussian (or spiked) inputs, sample streams."""

from reprjax._lazy import lazy_attributes

_MODULES = ("targets", "links", "exponents", "data", "latent", "streams")
_ENTRY_POINTS = {
    "MultiIndexTarget": "targets",
    "paper_target": "targets",
    "DataConfig": "data",
    "sample_dataset": "data",
}

__getattr__, __dir__, __all__ = lazy_attributes(__name__, _MODULES, _ENTRY_POINTS)
