r"""Symbolic derivations: expectations over random masks, computed by sympy.

Every closed form in the book is *computed* here from its definition: a random quantity is
written as a sympy expression in mask symbols (and noise symbols), and :func:`expectation`
takes its expectation using only the distribution of those symbols. Nothing in this module
types in an answer; the tests compare what it derives with the formulas stated in the book.

Two routes compute an expectation, and they must agree:

* ``"moments"``: expand the expression as a polynomial in the random symbols and replace each
  monomial by the product of the symbols' moments (independence). For a Bernoulli mask
  :math:`m^k = m`, so :math:`\mathbb E[m^k] = q` for every :math:`k \ge 1`.
* ``"enumerate"``: the definition itself, :math:`\mathbb E[f(m)] = \sum_{m \in \{0,1\}^n} P(m) f(m)`,
  for expressions of Bernoulli symbols only; it also handles non-polynomial expressions.

The machinery (random symbols, :func:`expectation`, :func:`variance`, :func:`tidy`) lives in
``_core``; each chapter's derivations live in a submodule named after the chapter's topic
(``inverted`` for chapter 1, ``implicit_l2`` for chapter 2, ...), and every name is
re-exported here. See chapter 1, "Inverted dropout", section "Derivation".
"""

from . import _core, inverted
from ._core import *  # noqa: F403
from .inverted import *  # noqa: F403
from . import implicit_l2  # chapter 2
from .implicit_l2 import *  # noqa: F403
from . import jensen  # chapter 3
from .jensen import *  # noqa: F403
from . import ensembles  # chapter 4
from .ensembles import *  # noqa: F403
from . import uncertainty  # chapter 5
from .uncertainty import *  # noqa: F403
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
from . import modern  # chapter 14
from .modern import *  # noqa: F403
from . import applications  # chapter 15
from .applications import *  # noqa: F403

__all__ = [
    *_core.__all__,
    *inverted.__all__,
    *implicit_l2.__all__,
    *jensen.__all__,
    *ensembles.__all__,
    *uncertainty.__all__,
    *batchnorm.__all__,
    *selu.__all__,
    *dropblock.__all__,
    *stochastic_depth.__all__,
    *attention.__all__,
    *variational.__all__,
    *recurrent.__all__,
    *graphs.__all__,
    *concrete.__all__,
    *modern.__all__,
    *applications.__all__,
]
