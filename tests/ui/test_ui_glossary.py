"""The glossary: every definition is a short plain sentence, hover() underlines the first use of a
term with its definition (escaped, never inside another definition), tip() feeds help=."""
import html
import re

import pytest

from karp_models.ui import glossary


def test_every_term_has_a_short_definition_ending_in_a_full_stop():
    for term, text in glossary.TERMS.items():
        assert 40 <= len(text) <= 240, term
        assert text.endswith(".") and "  " not in text, term
    for alias, term in glossary._ALIASES.items():
        assert term in glossary.TERMS, alias


def test_the_words_the_issue_names_are_defined():
    for term in ("logit", "nats", "BatchNorm", "ECE", "McNemar", "Spearman rho", "infidelity", "rollout"):
        assert glossary.define(term)


def test_hover_wraps_the_first_use_only_and_keeps_its_case():
    out = glossary.hover("The Logit is a score; every logit counts.", "logit")
    assert out.count('class="karp-term"') == 1
    assert out.startswith('The <span class="karp-term" tabindex="0" data-def="')
    assert out.endswith('">Logit</span> is a score; every logit counts.')
    # whole words only: "logits" is not "logit", "nats/char" has its own alias
    assert glossary.hover("logits and ECEs", "logit", "ECE") == "logits and ECEs"


def test_hover_escapes_the_definition_and_never_nests():
    out = glossary.hover("A logit goes through softmax.", "logit", "softmax")
    assert out.count("<span") == 2                           # "softmax" inside logit's definition untouched
    defs = re.findall(r'data-def="([^"]*)"', out)
    assert [html.unescape(d) for d in defs] == [glossary.define("logit"), glossary.define("softmax")]


def test_unknown_terms_fail_loudly():
    with pytest.raises(KeyError):
        glossary.hover("anything", "quantum foam")
    with pytest.raises(KeyError):
        glossary.tip("quantum foam")


def test_tip_is_markdown_for_help():
    assert glossary.tip("ECE", "p-value") == (f"**ECE**: {glossary.define('ECE')}\n\n"
                                              f"**p-value**: {glossary.define('p-value')}")
