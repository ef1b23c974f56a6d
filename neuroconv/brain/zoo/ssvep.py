"""SSVEP baselines in the zoo: MOABB's CCA, TRCA and MsetCCA and its TS+LR recipe
(:mod:`neuroconv.brain.ssvep`), fitted like every classical baseline
(:class:`~neuroconv.brain.zoo.classical.ClassicalDecoder`).

The stimulus frequency of each class is read from the class names (``"20Hz"``,
``"30Hz"``: :func:`~neuroconv.brain.ssvep.freqs_from_labels`); ``--compare`` runs these
baselines only when every class name is a frequency. ``ssvep_ts_lr`` standardises its
tangent vectors and chooses its logistic regression's ``C`` on the inner split like every
regulariser; CCA, TRCA and MsetCCA have
none, and no notion of class weights (they pick the class of highest correlation, with
no prior).
"""

from __future__ import annotations

from sklearn.preprocessing import FunctionTransformer

from .base import DecodeData, Traits, register
from .classical import ClassicalDecoder

__all__ = ["SSVEPDecoder", "classes_are_frequencies"]


def classes_are_frequencies(classes) -> bool:
    """True when every class name reads as a stimulus frequency (``"20Hz"``, ``"7.5"``)."""
    from ..ssvep import freqs_from_labels

    try:
        freqs_from_labels(list(classes))
    except ValueError:
        return False
    return True


class SSVEPDecoder(ClassicalDecoder):
    """An SSVEP baseline of :func:`~neuroconv.brain.ssvep.make_ssvep_baseline`: the class
    frequencies come from the class names, the rate from the data."""

    def _parts(self, data: DecodeData, C=None, class_weight=None, **warm):
        from ..ssvep import freqs_from_labels, make_ssvep_baseline

        est = make_ssvep_baseline(self.name, sfreq=data.sfreq(self.name), freqs=freqs_from_labels(data.classes),
                                  seed=self.context.seed, class_weight=class_weight)
        if hasattr(est, "steps"):  # a pipeline ending in the logistic regression: standardised features
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            head = est[-1]
            if C is not None:
                head.set_params(C=C)
            return make_pipeline(*[step for _, step in est[:-1].steps], StandardScaler()), head
        return FunctionTransformer(), est

    @classmethod
    def applies(cls, targets) -> bool:
        return classes_are_frequencies(targets.classes)


def _entry(name: str, library: str, summary: str):
    register(name, Traits("baseline", "classical", ("eeg", "meg"), library=library, paradigm="ssvep"), SSVEPDecoder,
             summary=summary, pipeline=None, fixed_length=True)


_entry("ssvep_cca", "moabb", "MOABB's SSVEP_CCA: canonical correlation with sine/cosine references")
_entry("ssvep_trca", "moabb", "MOABB's SSVEP_TRCA: ensemble task-related component analysis")
_entry("ssvep_msetcca", "moabb", "MOABB's SSVEP_MsetCCA: multiset CCA templates")
_entry("ssvep_ts_lr", "moabb", "MOABB's SSVEP TS+LR: filter bank at each frequency -> covariances -> tangent space "
                               "-> logistic regression")
