"""The words of deep learning that karp's pages use, each with a short definition, and the helpers
that show a definition on hover wherever the word appears.

- `hover(text, *terms)`: markdown in which the first occurrence of each term is underlined and
  shows its definition on hover or keyboard focus (CSS in ui.style.PAGE_CSS; draw the text with
  `st.markdown(..., unsafe_allow_html=True)`);
- `tip(*terms)`: the definitions as one text for a widget's or metric's `help=`;
- `words(*terms)`: a "Words on this page" popover listing them, for terms inside charts.

Definitions are for a student meeting the word for the first time: what it is, and how to read
its number when it has one.
"""
from __future__ import annotations

import html
import re

import streamlit as st

TERMS: dict[str, str] = {
    # --- training
    "parameters": "The numbers inside a network that training adjusts (weights and biases). "
                  "More parameters can learn more, but take longer to train.",
    "step": "One update of the parameters: the network sees one batch, measures its loss and "
            "moves every parameter a little downhill.",
    "batch size": "How many examples the network sees in one step. Larger batches give steadier "
                  "steps but each step takes longer.",
    "learning rate": "How far each step moves the parameters. Too small: learning is slow. Too "
                     "large: the loss jumps around or explodes.",
    "epoch": "One pass over the whole training set. 0.5 epochs means half of the training "
             "images have been seen once.",
    "optimizer": "The rule that turns gradients into parameter updates. AdamW adapts the step "
                 "size of each parameter; SGD takes plain steps with momentum.",
    "augmentation": "Random changes to training images (small shifts, flips) so the network "
                    "learns the object, not its exact pixels.",
    "loss": "How wrong the network is on average; training makes it smaller. karp uses "
            "cross-entropy, measured in nats.",
    "nats": "The unit of the cross-entropy loss (natural logarithm). A loss of L nats means the "
            "right answer got a probability of about e^-L on average: 0.69 nats is 50%, 0.1 is 90%.",
    "validation": "Examples kept out of training and used only to measure the network: a fair "
                  "test of what it has learned rather than memorised.",
    "overfitting": "When the training loss keeps falling but the validation loss rises: the "
                   "network memorises its training examples instead of learning the pattern.",
    "preset": "A ready-made size of the model: how many layers and how wide they are.",
    # --- layers and models
    "convolution": "A small filter (say 3x3 pixels) slid over the image; at every place it "
                   "gives one number, how well that patch matches the filter.",
    "feature map": "The output of one filter over the whole image: bright where the filter "
                   "found its pattern.",
    "channel": "One feature map of a layer; a layer with 32 channels has 32 filters.",
    "BatchNorm": "Batch normalisation: a layer that rescales each channel to mean 0 and spread 1 "
                 "over the batch, which makes training faster and steadier.",
    "logit": "The raw score a network gives a class before softmax turns all the scores into "
             "probabilities. Higher means more likely; only the differences between logits matter.",
    "softmax": "Turns a list of scores (logits) into probabilities that are positive and sum to "
               "1; the largest score gets the largest probability.",
    "RNN": "Recurrent neural network: reads a text one character at a time and carries a memory "
           "vector (its cells) from each character to the next.",
    "LSTM": "Long short-term memory: an RNN whose cells have gates that decide what to keep, "
            "forget and output, so it can remember for longer.",
    "gate": "A number between 0 (shut) and 1 (open) that an LSTM or GRU computes at every "
            "character to let information through or not.",
    "cell": "One number of an RNN's memory vector; some cells track something a person can "
            "name, such as being inside quotes.",
    "attention": "Each position builds a query and compares it with the keys of the others; the "
                 "softmax of those scores says how much of each one it reads.",
    "head": "One of several attention patterns a layer computes side by side; each head can "
            "look for something different.",
    "transformer": "A network built from attention layers: every position looks at the others "
                   "directly instead of reading in order (GPT, ViT).",
    "CLS token": "An extra token a Vision Transformer adds to the patches; its final state is "
                 "what gets classified.",
    "patch": "A square piece of the image (7x7 pixels here) that a Vision Transformer treats "
             "as one token, like a word.",
    "rollout": "Attention rollout: multiplies the attention of all layers (with the skip "
               "connections) to follow what the CLS token reads back to the image patches.",
    "temperature": "Divides the logits before sampling: below 1 the likeliest characters win "
                   "more often, above 1 the choice gets more random.",
    "top-k": "Sample only among the k likeliest next characters; k = 1 always takes the likeliest.",
    # --- explaining
    "attribution": "A number per pixel saying how much it pushed the class score up (red) or "
                   "down (blue).",
    "saliency": "The gradient of the class score with respect to each pixel: how much a tiny "
                "change of that pixel would change the score.",
    "Grad-CAM": "Weights the last convolution layer's feature maps by their gradients: a coarse "
                "map of where the evidence for the class lies.",
    "Integrated Gradients": "Adds up gradients along a path from a black image to the real one; "
                            "the attributions then sum to the change of the score.",
    "sanity check": "Randomise the network's weights and recompute the maps: a map that does "
                    "not change is about the image, not the model (Adebayo et al. 2018).",
    "Spearman rho": "Spearman's rank correlation (ρ): 1 when two maps rank the pixels in the "
                    "same order, 0 when they are unrelated, -1 when reversed.",
    "infidelity": "How badly the map predicts the change of the score when the image is "
                  "disturbed with noise. Lower is better.",
    "max-sensitivity": "How much the map changes when the image moves a tiny bit. Lower is "
                       "steadier.",
    "deletion": "Black out the most important pixels first: a faithful map makes the "
                "probability fall fast (small area under the curve).",
    "insertion": "Add the most important pixels to a black image first: a faithful map makes "
                 "the probability rise fast (large area under the curve).",
    "adversarial example": "An image changed so slightly that a person sees no difference, yet "
                           "the network's answer flips.",
    # --- evaluating
    "confusion matrix": "A table of true class (rows) against predicted class (columns); the "
                        "diagonal holds the right answers.",
    "precision": "Of the images the model called this class, the share that really are.",
    "recall": "Of the images of this class, the share the model found.",
    "calibration": "Whether a model's confidence matches how often it is right: of the answers "
                   "given with 80% confidence, 80% should be right.",
    "ECE": "Expected calibration error: the average gap between how confident the model is and "
           "how often it is right, weighted by images. 0% is perfectly calibrated.",
    "McNemar": "McNemar's test compares two models on the images where exactly one is right. A "
               "p-value below 0.05 says the difference is unlikely to be luck.",
    "p-value": "How likely a result at least this uneven would be by chance alone; small "
               "(below 0.05) means probably not chance.",
    "95% interval": "Where the accuracy on new images from the same source probably lies (the "
                    "Wilson score interval).",
    "embedding": "The list of numbers a network's last layer makes of an image; similar images "
                 "get nearby lists.",
    "t-SNE": "Places points in 2-D so that neighbours stay neighbours; distances between "
             "clusters mean little.",
    "PCA": "Principal component analysis: the two directions in which the points spread most.",
}

_ALIASES = {"ρ": "Spearman rho", "Spearman": "Spearman rho", "logits": "logit",
            "nats/char": "nats", "cells": "cell", "gates": "gate", "heads": "head",
            "attention rollout": "rollout", "parameter": "parameters"}


def define(term: str) -> str:
    """The definition of `term` (or of one of its aliases); KeyError for an unknown term."""
    return TERMS[_ALIASES.get(term, term)]


def tip(*terms: str) -> str:
    """The definitions of `terms`, one paragraph each, for a `help=` tooltip."""
    return "\n\n".join(f"**{t}**: {define(t)}" for t in terms)


def _span(word: str, term: str) -> str:
    return (f'<span class="karp-term" tabindex="0" data-def="{html.escape(define(term), quote=True)}">'
            f"{word}</span>")


def hover(text: str, *terms: str) -> str:
    """`text` with the first whole-word occurrence of each of `terms` (case as written in the
    text, any case matched) underlined and defined on hover. Draw it with
    st.markdown(..., unsafe_allow_html=True) or st.caption(..., unsafe_allow_html=True)."""
    spans: list[str] = []                                      # placeholders, so a definition is
    for term in terms:                                         # never searched for the next term
        define(term)                                           # an unknown term fails loudly
        pattern = re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)

        def put(m: re.Match, term: str = term) -> str:
            spans.append(_span(m.group(0), term))
            return f"\x00{len(spans) - 1}\x00"
        text = pattern.sub(put, text, count=1)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)


def words(*terms: str, container=st) -> None:
    """A "Words on this page" popover with the definitions of `terms` (those in charts and
    tables, where no hover reaches)."""
    with container.popover("Words on this page", icon=":material/menu_book:"):
        for t in terms:
            st.markdown(f"**{t}**: {define(t)}")
