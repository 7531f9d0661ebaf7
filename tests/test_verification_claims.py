"""The introduction's verification claim matches a tested list of the book's numbered equations.

Every numbered display equation of every chapter (a ``$$ ... $$ (eq-name)`` display, a
``(eq-name)=`` target, a ``:label:`` option of a math directive or a ``\\label{...}``) is listed in
``REGISTRY`` below with its kind:

- ``"definition"``: it defines something (a dropout variant, a loss, an estimator, an update rule);
  nothing is derived. It names the library function that implements it, if any, and the tests
  that check the implementation against the definition.
- ``"symbolic"``: sympy derives it from the definition for symbolic sizes (any L, any alpha). It
  names the derivation function in :mod:`dropoutbook.derivations` and the tests that compare the
  derived expression with the displayed one.
- ``"small case"``: sympy derives it for small sizes (n = d = 2, d = 3, a small map) and the display
  generalizes by hand; tests check the general statement at other sizes. It names the derivation
  function and those tests.
- ``"typed"``: typed in (a fit, a count) and checked numerically by the named tests.

An unlisted label fails the test, and so does a listed label that no chapter displays any more, a
derivation function that does not exist, or a test that does not exist. The introduction states how
many equations are of each kind; the last test compares those numbers with this list.

To add an equation: add one line to ``REGISTRY`` with the chapter, the kind, the derivation function
(its name in :mod:`dropoutbook.derivations`; required for "symbolic" and "small case"), the library
name it implements (optional, for "definition") and at least one test as ``"tests/FILE.py::NAME"``;
then update the counts in ``intro.md`` (the failing test prints the sentence it expects).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import dropoutbook
from dropoutbook import derivations

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))

KINDS = ("definition", "symbolic", "small case", "typed")


@dataclass(frozen=True)
class Claim:
    chapter: str
    kind: str
    tests: tuple[str, ...]
    derivation: str | None = None  #: a name in dropoutbook.derivations
    implements: str | None = None  #: a name in dropoutbook (for a definition)


def claim(chapter, kind, *tests, derivation=None, implements=None):
    return Claim(chapter, kind, tuple(tests), derivation, implements)


D, S, SMALL, T = KINDS
REGISTRY: dict[str, Claim] = {
    # chapter 01
    "eq-inverted": claim("01", D, "tests/test_masks.py::test_inverted_dropout_values_are_zero_or_scaled_input",
                         implements="inverted_dropout"),
    # chapter 02
    "eq-l2-loss": claim("02", D, "tests/test_derivations_implicit_l2.py::test_plain_loss_is_the_stated_normalisation"),
    "eq-l2-penalty": claim("02", SMALL, "tests/test_derivations_implicit_l2.py::test_penalty_equals_stated_formula",
                           "tests/test_implicit_l2.py::test_dropout_penalty_equals_the_derived_penalty",
                           derivation="linear_dropout_regression"),
    "eq-l2-ridge": claim("02", SMALL, "tests/test_derivations_implicit_l2.py::test_minimiser_equals_stated_closed_form_symbolically",
                         "tests/test_implicit_l2.py::test_expected_dropout_gradient_vanishes_at_the_ridge_solution",
                         derivation="linear_dropout_regression"),
    "eq-l2-logistic": claim("02", SMALL, "tests/test_derivations_implicit_l2.py::test_quadratic_penalty_equals_stated_formula",
                            "tests/test_implicit_l2.py::test_logistic_penalty_monte_carlo_agrees_with_enumeration",
                            derivation="logistic_dropout_penalty_derivation"),
    # chapter 03
    "eq-jensen-z": claim("03", D, "tests/test_jensen.py::test_quadratic_gap_closed_form_against_the_dropout_sampler"),
    "eq-jensen-gap": claim("03", D, "tests/test_jensen.py::test_exact_gap_against_the_dropout_sampler"),
    "eq-jensen-gauss": claim("03", S, "tests/test_derivations_jensen.py::test_gaussian_relu_mean_is_the_stated_closed_form",
                             "tests/test_derivations_jensen.py::test_gaussian_relu_mean_agrees_with_monte_carlo",
                             derivation="gaussian_relu_mean"),
    # chapter 04
    "eq-subnetwork-average": claim("04", D, "tests/test_ensembles.py::test_subnetwork_average_of_a_network_matches_its_definition",
                                   implements="subnetwork_average"),
    "eq-ambiguity-terms": claim("04", D, "tests/test_ensembles.py::test_ambiguity_decomposition_matches_the_definitions",
                                implements="ambiguity_decomposition"),
    "eq-nwgm": claim("04", SMALL, "tests/test_derivations_ensembles.py::test_softmax_geometric_mean_is_the_weight_scaled_softmax",
                     "tests/test_derivations_ensembles.py::test_softmax_geometric_mean_numerically_and_against_the_arithmetic_mean",
                     derivation="softmax_geometric_mean"),
    # chapter 05
    "eq-mc": claim("05", D, "tests/test_derivations_uncertainty.py::test_linear_mc_estimator_matches_the_stated_formulas",
                   implements="mc_predict"),
    # chapter 06
    "eq-bn-running": claim("06", D, "tests/test_batchnorm.py::test_batchnorm_running_variance_converges_to_the_training_variance"),
    "eq-linear-shift": claim("06", SMALL, "tests/test_derivations_batchnorm.py::test_linear_shift_stated_formulas",
                             "tests/test_derivations_batchnorm.py::test_linear_shift_with_one_input_is_the_unit_formula",
                             derivation="linear_variance_shift"),
    "eq-bn-conditional": claim("06", T, "tests/test_batchnorm.py::test_batchnorm_with_fixed_statistics_keeps_the_conditional_mean"),
    "eq-selu": claim("06", D, "tests/test_selu.py::test_selu_constants_are_torchs"),
    "eq-alpha-dropout": claim("06", D, "tests/test_selu.py::test_output_takes_the_two_stated_forms_and_masks_are_independent",
                              "tests/test_selu.py::test_derived_affine_correction_is_the_stated_one_and_standardizes",
                              implements="alpha_dropout"),
    # chapter 07
    "eq-dropblock-fraction": claim("07", SMALL, "tests/test_derivations_dropblock.py::test_drop_fraction_of_a_small_map",
                                   "tests/test_dropblock.py::test_block_drop_fraction_is_the_mean_of_the_stated_probability",
                                   "tests/test_dropblock.py::test_coverage_counts_match_enumeration_and_stated_formula",
                                   derivation="block_drop_fraction_exact"),
    "eq-dropblock-scale": claim("07", SMALL, "tests/test_derivations_dropblock.py::test_position_keep_probability_from_the_seed_layout",
                                "tests/test_derivations_dropblock.py::test_position_scale_is_biased_per_position_but_not_on_average",
                                derivation="position_scale_exact"),
    # chapter 08
    "eq-sd-block": claim("08", D, "tests/test_stochastic_depth.py::test_stochastic_depth_block_modes_and_test_time",
                         implements="StochasticDepth"),
    "eq-sd-schedule": claim("08", S, "tests/test_stochastic_depth.py::test_survival_schedule_matches_the_derived_expression",
                            "tests/test_stochastic_depth.py::test_survival_schedule_is_the_stated_formula",
                            derivation="linear_survival_schedule"),
    # chapter 09 (no numbered equation)
    # chapter 10
    "eq-gaussian-dropout": claim("10", D, "tests/test_variational.py::test_gaussian_dropout_mean_and_variance",
                                 implements="gaussian_dropout"),
    "eq-elbo": claim("10", D, "tests/test_variational.py::test_svdo_kl_is_the_sum_of_the_approximation_and_gives_gradients",
                     implements="sparse_vd_kl"),
    "eq-lrt": claim("10", SMALL, "tests/test_variational.py::test_local_reparameterization_agrees_with_the_derived_moments",
                    "tests/test_variational.py::test_local_reparameterization_equals_sampling_the_weights_in_distribution",
                    derivation="local_reparameterization_moments"),
    "eq-exact-kl": claim("10", S, "tests/test_variational.py::test_log_uniform_kl_depends_on_alpha_only",
                         "tests/test_variational.py::test_log_uniform_kl_by_monte_carlo",
                         derivation="log_uniform_kl"),
    "eq-kl-approx": claim("10", T, "tests/test_variational.py::test_neg_kl_approx_formula_and_constant",
                          "tests/test_variational.py::test_exact_neg_kl_agrees_with_two_independent_routes"),
    # chapter 11
    "eq-rnn-locked": claim("11", D, "tests/test_recurrent.py::test_locked_dropout_shares_the_mask_over_time",
                           implements="locked_dropout"),
    # chapter 12
    "eq-gr-gcn": claim("12", D, "tests/test_graphs.py::test_normalized_adjacency_is_the_gcn_propagation_of_torch_geometric",
                       implements="normalized_adjacency"),
    # chapter 13
    "eq-cd-mask": claim("13", D, "tests/test_concrete.py::test_mask_is_above_one_half_with_probability_q",
                        "tests/test_concrete.py::test_mask_cdf_is_the_derived_one", implements="concrete_mask"),
    "eq-cd-reg": claim("13", D, "tests/test_concrete.py::test_regularization_is_the_stated_formula",
                       "tests/test_derivations_concrete.py::test_regularizer_terms", implements="ConcreteDropout"),
    # chapter 14 (no numbered equation)
    # chapter 15
    "eq-zinb-moments": claim("15", S, "tests/test_derivations_applications.py::test_zinb_moments_are_the_stated_formulas",
                             "tests/test_derivations_applications.py::test_zinb_moments_agree_with_the_sampler_and_reject_wrong_formulas",
                             derivation="zinb_moments"),
}

# The labels as the chapters write them: "$$ ... $$ (eq-name)", "(eq-name)=", ":label: name", "\label{name}".
LABEL_PATTERNS = (
    re.compile(r"\$\$\s*\(([\w-]+)\)"),
    re.compile(r"^\(([\w-]*eq[\w-]*)\)=\s*$", re.M),
    re.compile(r"^:label:\s*(\S+)", re.M),
    re.compile(r"\\label\{([^}]+)\}"),
)


def numbered_equations() -> dict[str, str]:
    """Every equation label of every chapter, with the chapter number that displays it."""
    found: dict[str, str] = {}
    for path in CHAPTERS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            text = "".join(cell["source"])
            for pattern in LABEL_PATTERNS:
                for label in pattern.findall(text):
                    assert label not in found, f"{label} is displayed twice ({found[label]}, {path.name})"
                    found[label] = path.name[:2]
    return found


def test_the_label_scan_finds_each_way_of_writing_a_label():
    text = "$$\nx\n$$ (eq-a)\n\n(eq-b)=\n```{math}\n:label: eq-c\nx\n```\n\\label{eq-d}\n(ch-intro)="
    labels = [label for pattern in LABEL_PATTERNS for label in pattern.findall(text)]
    assert labels == ["eq-a", "eq-b", "eq-c", "eq-d"]


def test_every_numbered_equation_is_in_the_registry_and_every_entry_is_displayed():
    displayed = numbered_equations()
    assert len(displayed) > 10  # the scan works on the notebooks as they are written
    missing = sorted(set(displayed) - set(REGISTRY))
    assert not missing, (f"numbered equations without an entry in REGISTRY of {__file__}: {missing}; "
                         "add one line each (see the module docstring)")
    stale = sorted(set(REGISTRY) - set(displayed))
    assert not stale, f"REGISTRY lists labels that no chapter displays: {stale}"
    wrong_chapter = {label: (c.chapter, displayed[label]) for label, c in REGISTRY.items()
                     if c.chapter != displayed[label]}
    assert not wrong_chapter, f"(registered, actual) chapter differ: {wrong_chapter}"


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("label", sorted(REGISTRY))
def test_each_entry_names_what_exists(label):
    entry = REGISTRY[label]
    assert entry.kind in KINDS, entry.kind
    assert entry.tests, f"{label}: name at least one test"
    for test in entry.tests:
        file, _, name = test.partition("::")
        path = ROOT / file
        assert path.is_file(), f"{label}: no test file {file}"
        assert name.startswith("test_") and name in _test_functions(path), f"{label}: no test {test}"
    if entry.kind in ("symbolic", "small case"):
        assert entry.derivation, f"{label}: a {entry.kind} result names its derivation function"
    if entry.derivation is not None:
        function = getattr(derivations, entry.derivation, None)
        assert callable(function), f"{label}: dropoutbook.derivations has no function {entry.derivation}"
    if entry.implements is not None:
        assert callable(getattr(dropoutbook, entry.implements, None)), \
            f"{label}: dropoutbook has no {entry.implements}"


def counts() -> dict[str, int]:
    return {kind: sum(c.kind == kind for c in REGISTRY.values()) for kind in KINDS}


def expected_sentence() -> str:
    n = counts()
    return (f"Of the book's {len(REGISTRY)} numbered equations, {n['definition']} are definitions, "
            f"{n['symbolic']} are derived by sympy for symbolic sizes, {n['small case']} are derived "
            f"by sympy for small cases and checked at other sizes by tests, and {n['typed']} "
            f"{'is' if n['typed'] == 1 else 'are'} typed and checked numerically")


def test_the_introduction_states_the_counts_of_this_list():
    intro = " ".join((ROOT / "intro.md").read_text(encoding="utf-8").split())
    sentence = expected_sentence()
    assert sentence in intro, f"intro.md must state, word for word: {sentence!r}"
