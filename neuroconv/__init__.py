"""neuroconv: brain recordings to sequences, and long-convolution models that learn from them.

The public sequence-library API::

    from neuroconv import fftconv, LongConv, SequenceModel, ModelConfig, param_groups

Every name below loads on first use (PEP 562), so ``import neuroconv`` and the import of
a subpackage (``neuroconv.data``, ``neuroconv.pipelines``...) load neither torch nor the
layers; ``from neuroconv import LongConv`` loads what ``LongConv`` needs.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

__all__ = [
    "fftconv",
    "LongConvKernel",
    "S4DKernel",
    "LongConv",
    "ButterflyConv",
    "ButterflyFFTConv",
    "GatedLongConv",
    "AttentionLayer",
    "SequenceModel",
    "ModelConfig",
    "param_groups",
    "LAYERS",
    "LongConvClassifier",
    "LongConvRegressor",
    "CovConvClassifier",
    "CovConvRegressor",
    "load_pretrained",
    "__version__",
]

#: public name -> the module that defines it
_LAZY = {
    "LongConvKernel": "neuroconv.kernel_gen",
    "S4DKernel": "neuroconv.kernel_gen",
    "LongConv": "neuroconv.layers",
    "ButterflyConv": "neuroconv.layers",
    "GatedLongConv": "neuroconv.layers",
    "AttentionLayer": "neuroconv.layers",
    "LAYERS": "neuroconv.layers",
    "ButterflyFFTConv": "neuroconv.butterfly",
    "SequenceModel": "neuroconv.model",
    "ModelConfig": "neuroconv.model",
    "param_groups": "neuroconv.optim",
    "LongConvClassifier": "neuroconv.estimators",
    "LongConvRegressor": "neuroconv.estimators",
    "CovConvClassifier": "neuroconv.estimators",
    "CovConvRegressor": "neuroconv.estimators",
    "load_pretrained": "neuroconv.brain.models",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuroconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``neuroconv.fftconv`` is the function, although a submodule has the same name: the
    import system binds a submodule onto its package when it first loads it, and this
    package keeps the function there whichever import came first."""

    @property
    def fftconv(self):
        return importlib.import_module("neuroconv.fftconv").fftconv

    @fftconv.setter
    def fftconv(self, value):  # the submodule being bound by the import system
        pass


sys.modules[__name__].__class__ = _Package
