"""The text pages' input helpers: what a character model can read of a typed or pasted text
(with a message on the page for what it cannot), its vocabulary, and sample passages.
Their figures are in ui.figures.text, their cached computations in ui.compute.
"""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from karp_models.i18n import _
from karp_models.introspect import text as tx
from karp_models.ui.figures.text import show_char

MAX_CHARS = 2000          # longer texts are cut here (item 6: long text stays responsive)


def prepare_text(text: str, vocab: Sequence[str], limit: int = MAX_CHARS, where=st) -> tuple[list[int], str]:
    """Ids and text of what the model can read: unknown characters dropped and the text cut to `limit`,
    each with a message on the page. Returns ([], '') for an empty text."""
    ids, dropped = tx.encode(vocab, text)
    if dropped:
        where.warning(_("Left out characters this model never saw in training: {chars}").format(
            chars=" ".join(f"`{show_char(c)}`" for c in dropped[:30])))
    if len(ids) > limit:
        where.info(_("The text has {n:,} characters; only the first {limit:,} are used, so the "
                     "page stays responsive. Move the window to look at any part of them.").format(
                         n=len(ids), limit=limit))
        ids = ids[:limit]
    return ids, "".join(vocab[i] for i in ids)


def vocab_of(ck) -> list[str]:
    """The checkpoint's character list (stored with the weights), or its dataset's."""
    if ck.meta.get("vocab"):
        return list(ck.meta["vocab"])
    from karp_models.ui.loaders import dataset
    return list(dataset(ck.meta["dataset"]).vocab)


@st.cache_data(show_spinner=False)
def sample_passage(dataset_name: str, length: int = 600, must_have: str = "") -> str:
    """A passage of the dataset's validation text starting at a line, containing `must_have` if it can."""
    from karp_models.ui.loaders import dataset
    try:
        ds = dataset(dataset_name)
    except Exception:                                                  # dataset missing: a built-in line
        return "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
    val = ds.decode(ds.val_ids[:200_000])
    at = val.find(must_have) if must_have else -1
    start = max(0, at - length // 3) if at >= 0 else 2000
    para = val.find("\n\n", start, start + 300)                     # begin at a speech, else at a line
    start = para + 2 if para >= 0 else val.find("\n", start) + 1
    return val[start:start + length]
