"""neuroconv: brain recordings to sequences, and long-convolution models that learn from them.

The public sequence-library API::

    from neuroconv import fftconv, LongConv, SequenceModel, ModelConfig, param_groups
"""

from __future__ import annotations

__version__ = "0.1.0"

from .butterfly import ButterflyFFTConv
from .fftconv import fftconv
from .kernel_gen import LongConvKernel, S4DKernel
from .layers import LAYERS, AttentionLayer, ButterflyConv, GatedLongConv, LongConv
from .model import ModelConfig, SequenceModel
from .optim import param_groups

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
    "load_pretrained",
    "__version__",
]

# Heavier pieces (scikit-learn, Lightning) load on first use, so `import neuroconv`
# stays light.
_LAZY = {
    "LongConvClassifier": "neuroconv.estimators",
    "LongConvRegressor": "neuroconv.estimators",
    "load_pretrained": "neuroconv.brain.models",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neuroconv' has no attribute {name!r}")
