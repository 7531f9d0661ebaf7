"""dropoutbook: the library of the textbook *Dropout, Verified*.

Every function carries the name of the book section that explains it. Import it as::

    import dropoutbook as db

Chapter 1 ("Inverted dropout"): :func:`bernoulli_mask`, :func:`inverted_dropout`,
:func:`standard_dropout`, :class:`InvertedDropout`, :class:`StandardDropout`; the submodules
:mod:`dropoutbook.derivations` (sympy), :mod:`dropoutbook.montecarlo` (estimates with standard
errors) and :mod:`dropoutbook.exercises` (checkers).

Chapters 2 to 15 each have a module named after their topic (:mod:`dropoutbook.implicit_l2`,
:mod:`dropoutbook.jensen`, ...); their public names are re-exported here.
"""

from . import derivations, environment, exercises, montecarlo
from .masks import InvertedDropout, StandardDropout, bernoulli_mask, inverted_dropout, standard_dropout
from .montecarlo import Estimate, agrees, estimate_mean, estimate_variance, z_score

# One module per chapter topic; each lists its public names in its own __all__.
from . import implicit_l2  # chapter 2
from .implicit_l2 import *  # noqa: F403
from . import jensen  # chapter 3
from .jensen import *  # noqa: F403
from . import ensembles  # chapter 4
from .ensembles import *  # noqa: F403
from . import uncertainty  # chapter 5
from .uncertainty import *  # noqa: F403
from . import calibration  # chapter 5 (calibration; reused by chapter 15)
from .calibration import *  # noqa: F403
from . import batchnorm  # chapter 6
from .batchnorm import *  # noqa: F403
from . import selu  # chapter 6, section "AlphaDropout"
from .selu import *  # noqa: F403
from . import dropblock  # chapter 7
from .dropblock import *  # noqa: F403
from . import stochastic_depth  # chapter 8
from .stochastic_depth import *  # noqa: F403
from . import attention  # chapter 9
from .attention import *  # noqa: F403
from . import variational  # chapter 10
from .variational import *  # noqa: F403
from . import recurrent  # chapter 11
from .recurrent import *  # noqa: F403
from . import graphs  # chapter 12
from .graphs import *  # noqa: F403
from . import concrete  # chapter 13
from .concrete import *  # noqa: F403
from . import schedules, rdrop, layerdrop, lora  # chapter 14
from .schedules import *  # noqa: F403
from .rdrop import *  # noqa: F403
from .layerdrop import *  # noqa: F403
from .lora import *  # noqa: F403
from . import causal, imputation  # chapter 15
from .causal import *  # noqa: F403
from .imputation import *  # noqa: F403
from .data import load_breast_cancer_split, ZINBCounts, sample_zinb, simulate_zinb_counts  # chapter 15

__version__ = "0.1.0"

__all__ = [
    "bernoulli_mask", "inverted_dropout", "standard_dropout", "InvertedDropout", "StandardDropout",
    "Estimate", "estimate_mean", "estimate_variance", "z_score", "agrees",
    "derivations", "montecarlo", "exercises", "environment",
    *implicit_l2.__all__,
    *jensen.__all__,
    *ensembles.__all__,
    *uncertainty.__all__,
    *calibration.__all__,
    *batchnorm.__all__,
    *selu.__all__,
    *dropblock.__all__,
    *stochastic_depth.__all__,
    *attention.__all__,
    *variational.__all__,
    *recurrent.__all__,
    *graphs.__all__,
    *concrete.__all__,
    *schedules.__all__, *rdrop.__all__, *layerdrop.__all__, *lora.__all__,
    *causal.__all__, *imputation.__all__, "load_breast_cancer_split", "ZINBCounts", "sample_zinb", "simulate_zinb_counts",
]
