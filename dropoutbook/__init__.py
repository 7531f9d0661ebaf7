"""dropoutbook: the library of the textbook *Dropout, Verified*.

Every function carries the name of the book section that explains it. Import it as::

    import dropoutbook as db

Chapter 1 ("Inverted dropout"): :func:`bernoulli_mask`, :func:`inverted_dropout`,
:func:`standard_dropout`, :class:`InvertedDropout`, :class:`StandardDropout`; the submodules
:mod:`dropoutbook.derivations` (sympy), :mod:`dropoutbook.montecarlo` (estimates with standard
errors) and :mod:`dropoutbook.exercises` (checkers).
"""

from . import derivations, exercises, montecarlo
from .masks import InvertedDropout, StandardDropout, bernoulli_mask, inverted_dropout, standard_dropout
from .montecarlo import Estimate, agrees, estimate_mean, estimate_variance, z_score

__version__ = "0.1.0"

__all__ = [
    "bernoulli_mask", "inverted_dropout", "standard_dropout", "InvertedDropout", "StandardDropout",
    "Estimate", "estimate_mean", "estimate_variance", "z_score", "agrees",
    "derivations", "montecarlo", "exercises",
]
