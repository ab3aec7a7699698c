"""The pages' default texts: a passage asked to contain a character contains it."""
import pytest

from karp_models.ui.text_views import sample_passage


@pytest.mark.parametrize("length", [256, 600, 1500])
def test_a_passage_asked_for_a_quote_holds_an_opening_and_a_closing_one(length):
    text = sample_passage("shakespeare", length, must_have='"')
    assert len(text) == length and text.count('"') >= 2      # "Knock it out" scores closing a quote
