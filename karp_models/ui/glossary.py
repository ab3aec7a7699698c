"""The words of deep learning that karp's pages use, each with a short definition, and the helpers
that show a definition on hover wherever the word appears.

- `hover(text, *terms)`: markdown in which the first occurrence of each term is underlined and
  shows its definition on hover or keyboard focus (CSS in ui.style.PAGE_CSS; draw the text with
  `st.markdown(..., unsafe_allow_html=True)`);
- `tip(*terms)`: the definitions as one text for a widget's or metric's `help=`;
- `words(*terms)`: a "Words on this page" popover listing them, for terms inside charts.

Definitions are for a student meeting the word for the first time: what it is, and how to read
its number when it has one. Terms and definitions are in the catalog: a term is shown as
pgettext("glossary", term) (its translation is the word the translated sentences use), a
definition as _(definition).
"""
from __future__ import annotations

import html
import re

import streamlit as st

from karp_models.i18n import N_, NC_, _, pgettext

TERMS: dict[str, str] = {
    # --- training
    NC_("glossary", "parameters"): N_("The numbers inside a network that training adjusts (weights and biases). "
        "More parameters can learn more, but take longer to train."),
    NC_("glossary", "step"): N_("One update of the parameters: the network sees one batch, measures its loss and "
        "moves every parameter a little downhill."),
    NC_("glossary", "batch size"): N_("How many examples the network sees in one step. Larger batches give steadier "
        "steps but each step takes longer."),
    NC_("glossary", "learning rate"): N_("How far each step moves the parameters. Too small: learning is slow. Too "
        "large: the loss jumps around or explodes."),
    NC_("glossary", "epoch"): N_("One pass over the whole training set. 0.5 epochs means half of the training "
        "images have been seen once."),
    NC_("glossary", "optimizer"): N_("The rule that turns gradients into parameter updates. AdamW adapts each "
        "parameter's step; SGD steps with momentum; Muon makes a weight matrix's update orthogonal (every "
        "direction moves equally)."),
    NC_("glossary", "augmentation"): N_("Random changes to training images (small shifts, flips) so the network "
        "learns the object, not its exact pixels."),
    NC_("glossary", "loss"): N_("How wrong the network is on average; training makes it smaller. karp uses "
        "cross-entropy, measured in nats."),
    NC_("glossary", "nats"): N_("The unit of the cross-entropy loss (natural logarithm). A loss of L nats means the "
        "right answer got a probability of about e^-L on average: 0.69 nats is 50%, 0.1 is 90%."),
    NC_("glossary", "validation"): N_("Examples kept out of training and used only to measure the network: a fair "
        "test of what it has learned rather than memorised."),
    NC_("glossary", "overfitting"): N_("When the training loss keeps falling but the validation loss rises: the "
        "network memorises its training examples instead of learning the pattern."),
    NC_("glossary", "preset"): N_("A ready-made size of the model: how many layers and how wide they are."),
    # --- layers and models
    NC_("glossary", "convolution"): N_("A small filter (say 3x3 pixels) slid over the image; at every place it "
        "gives one number, how well that patch matches the filter."),
    NC_("glossary", "feature map"): N_("The output of one filter over the whole image: bright where the filter "
        "found its pattern."),
    NC_("glossary", "channel"): N_("One feature map of a layer; a layer with 32 channels has 32 filters."),
    NC_("glossary", "BatchNorm"): N_("Batch normalisation: a layer that rescales each channel to mean 0 and spread 1 "
        "over the batch, which makes training faster and steadier."),
    NC_("glossary", "logit"): N_("The raw score a network gives a class before softmax turns all the scores into "
        "probabilities. Higher means more likely; only the differences between logits matter."),
    NC_("glossary", "softmax"): N_("Turns a list of scores (logits) into probabilities that are positive and sum to "
        "1; the largest score gets the largest probability."),
    NC_("glossary", "RNN"): N_("Recurrent neural network: reads a text one character at a time and carries a memory "
        "vector (its cells) from each character to the next."),
    NC_("glossary", "LSTM"): N_("Long short-term memory: an RNN whose cells have gates that decide what to keep, "
        "forget and output, so it can remember for longer."),
    NC_("glossary", "gate"): N_("A number between 0 (shut) and 1 (open) that an LSTM or GRU computes at every "
        "character to let information through or not."),
    NC_("glossary", "cell"): N_("One number of an RNN's memory vector; some cells track something a person can "
        "name, such as being inside quotes."),
    NC_("glossary", "attention"): N_("Each position builds a query and compares it with the keys of the others; the "
        "softmax of those scores says how much of each one it reads."),
    NC_("glossary", "head"): N_("One of several attention patterns a layer computes side by side; each head can "
        "look for something different."),
    NC_("glossary", "transformer"): N_("A network built from attention layers: every position looks at the others "
        "directly instead of reading in order (GPT, ViT)."),
    NC_("glossary", "CLS token"): N_("An extra token a Vision Transformer adds to the patches; its final state is "
        "what gets classified."),
    NC_("glossary", "patch"): N_("A square piece of the image (7x7 pixels here) that a Vision Transformer treats "
        "as one token, like a word."),
    NC_("glossary", "rollout"): N_("Attention rollout: multiplies the attention of all layers (with the skip "
        "connections) to follow what the CLS token reads back to the image patches."),
    NC_("glossary", "temperature"): N_("Divides the logits before sampling: below 1 the likeliest characters win "
        "more often, above 1 the choice gets more random."),
    NC_("glossary", "top-k"): N_("Sample only among the k likeliest next characters; k = 1 always takes the likeliest."),
    # --- explaining
    NC_("glossary", "attribution"): N_("A number per pixel saying how much it pushed the class score up (red) or "
        "down (blue)."),
    NC_("glossary", "saliency"): N_("The gradient of the class score with respect to each pixel: how much a tiny "
        "change of that pixel would change the score."),
    NC_("glossary", "Grad-CAM"): N_("Weights the last convolution layer's feature maps by their gradients: a coarse "
        "map of where the evidence for the class lies."),
    NC_("glossary", "Integrated Gradients"): N_("Adds up gradients along a path from a black image to the real one; "
        "the attributions then sum to the change of the score."),
    NC_("glossary", "sanity check"): N_("Randomise the network's weights and recompute the maps: a map that does "
        "not change is about the image, not the model (Adebayo et al. 2018)."),
    NC_("glossary", "Spearman rho"): N_("Spearman's rank correlation (ρ): 1 when two maps rank the pixels in the "
        "same order, 0 when they are unrelated, -1 when reversed."),
    NC_("glossary", "infidelity"): N_("How badly the map predicts the change of the score when the image is "
        "disturbed with noise. Lower is better."),
    NC_("glossary", "max-sensitivity"): N_("How much the map changes when the image moves a tiny bit. Lower is "
        "steadier."),
    NC_("glossary", "deletion"): N_("Black out the most important pixels first: a faithful map makes the "
        "probability fall fast (small area under the curve)."),
    NC_("glossary", "insertion"): N_("Add the most important pixels to a black image first: a faithful map makes "
        "the probability rise fast (large area under the curve)."),
    NC_("glossary", "adversarial example"): N_("An image changed so slightly that a person sees no difference, yet "
        "the network's answer flips."),
    # --- evaluating
    NC_("glossary", "confusion matrix"): N_("A table of true class (rows) against predicted class (columns); the "
        "diagonal holds the right answers."),
    NC_("glossary", "precision"): N_("Of the images the model called this class, the share that really are."),
    NC_("glossary", "recall"): N_("Of the images of this class, the share the model found."),
    NC_("glossary", "calibration"): N_("Whether a model's confidence matches how often it is right: of the answers "
        "given with a confidence of 80%, eight in ten should be right."),
    NC_("glossary", "ECE"): N_("Expected calibration error: the average gap between how confident the model is and "
        "how often it is right, weighted by images. An ECE of 0% means perfectly calibrated."),
    NC_("glossary", "McNemar"): N_("McNemar's test compares two models on the images where exactly one is right. A "
        "p-value below 0.05 says the difference is unlikely to be luck."),
    NC_("glossary", "p-value"): N_("How likely a result at least this uneven would be by chance alone; small "
        "(below 0.05) means probably not chance."),
    NC_("glossary", "confidence interval"): N_("Where the accuracy on new images from the same source probably lies (the "
        "Wilson score interval)."),
    NC_("glossary", "embedding"): N_("The list of numbers a network's last layer makes of an image; similar images "
        "get nearby lists."),
    NC_("glossary", "t-SNE"): N_("Places points in 2-D so that neighbours stay neighbours; distances between "
        "clusters mean little."),
    NC_("glossary", "PCA"): N_("Principal component analysis: the two directions in which the points spread most."),
    # --- interventions
    NC_("glossary", "ablation"): N_("Knocking a part of a network out (setting its output to zero, or to its "
        "average) and measuring what changes: a test of whether the part is needed, not only correlated."),
    NC_("glossary", "activation patching"): N_("Run the network on a corrupted input, but copy one activation from "
        "its run on the clean input: if the clean answer comes back, that activation carries the difference."),
    NC_("glossary", "logit lens"): N_("Apply the network's last layer to the middle of the network: what it would "
        "predict if it stopped after this layer."),
    NC_("glossary", "Kendall tau"): N_("Kendall's rank correlation (τ): the share of pairs two rankings put in the "
        "same order minus the share they put in opposite orders."),
}

# other forms of a term, as they appear in sentences -> the term
_ALIASES = {"ρ": "Spearman rho", NC_("glossary", "Spearman"): "Spearman rho", NC_("glossary", "logits"): "logit",
            NC_("glossary", "nats/char"): "nats", NC_("glossary", "cells"): "cell",
            NC_("glossary", "gates"): "gate", NC_("glossary", "heads"): "head",
            NC_("glossary", "attention rollout"): "rollout", NC_("glossary", "parameter"): "parameters"}


def word(term: str) -> str:
    """`term` as the sentences of the current language write it."""
    return pgettext("glossary", term)


def define(term: str) -> str:
    """The definition of `term` (or of one of its aliases) in the current language; KeyError for
    an unknown term."""
    return _(TERMS[_ALIASES.get(term, term)])


def tip(*terms: str) -> str:
    """The definitions of `terms`, one paragraph each, for a `help=` tooltip."""
    return "\n\n".join(_("**{term}**: {definition}").format(term=word(t), definition=define(t)) for t in terms)


def _span(found: str, term: str) -> str:
    return (f'<span class="karp-term" tabindex="0" data-def="{html.escape(define(term), quote=True)}">'
            f"{found}</span>")


def _pattern(w: str) -> re.Pattern:
    """`w` as a whole word: no Latin letter, digit or hyphen may touch its Latin ends ("logit" is
    not in "logits"); Chinese words have no spaces around them, so a Chinese end may touch anything."""
    latin = "A-Za-z0-9_-"
    before = rf"(?<![{latin}])" if re.match(r"[A-Za-z0-9]", w) else ""
    after = rf"(?![{latin}])" if re.search(r"[A-Za-z0-9]$", w) else ""
    return re.compile(before + re.escape(w) + after, re.IGNORECASE)


def hover(text: str, *terms: str) -> str:
    """`text` with the first whole-word occurrence of each of `terms` (as the current language
    writes it: `word(term)`; case as written in the text, any case matched) underlined and
    defined on hover. Draw it with st.markdown(..., unsafe_allow_html=True) or
    st.caption(..., unsafe_allow_html=True)."""
    spans: list[str] = []                                      # placeholders, so a definition is
    for term in terms:                                         # never searched for the next term
        define(term)                                           # an unknown term fails loudly

        def put(m: re.Match, term: str = term) -> str:
            spans.append(_span(m.group(0), term))
            return f"\x00{len(spans) - 1}\x00"
        text = _pattern(word(term)).sub(put, text, count=1)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)


def words(*terms: str, container=st) -> None:
    """A "Words on this page" popover with the definitions of `terms` (those in charts and
    tables, where no hover reaches)."""
    with container.popover(_("Words on this page"), icon=":material/menu_book:"):
        for t in terms:
            st.markdown(_("**{term}**: {definition}").format(term=word(t), definition=define(t)))
