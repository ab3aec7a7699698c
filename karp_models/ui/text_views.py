"""The text pages' input helpers: what a character model reads of a typed or pasted text (introspect.text.read,
the one policy for characters a model does not know, with a message on the page), its vocabulary, and sample
passages from its dataset's validation text. Figures are in ui.figures.text, cached computations in ui.compute.
"""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from karp_models.i18n import _
from karp_models.introspect import text as tx
from karp_models.ui.figures.text import char_list, replaced_list

MAX_CHARS = 2000          # longer texts are cut here (item 6: long text stays responsive)


def show_reading(r: tx.Reading, where=st, what: str = "text") -> None:
    """Say on the page what the model did not read (listed once, in the order typed) and what it read in
    another form. `what`: 'text' or 'prime', the words for what was typed."""
    if r.unknown:
        msg = (_("This model never saw these characters in training, so it did not read them: {chars}. "
                 "Below is only the text it read.") if what == "text" else
               _("This model never saw these characters in training, so it did not read them: {chars}. "
                 "The prime shown with the output is the text it read."))
        where.warning(msg.format(chars=char_list(r.unknown)))
    if r.replaced:
        where.caption(_("Read in the model's own form: {pairs}.").format(pairs=replaced_list(r.replaced)))


def prepare_text(text: str, vocab: Sequence[str], limit: int = MAX_CHARS, where=st) -> tuple[list[int], str]:
    """Ids and text of what the model reads (tx.read), cut to `limit` characters, each with a message on the
    page. Returns ([], '') for an empty text."""
    r = tx.read(vocab, text)
    show_reading(r, where)
    ids = r.ids
    if len(ids) > limit:
        where.info(_("The text has {n:,} characters; only the first {limit:,} are used, so the "
                     "page stays responsive. Move the window to look at any part of them.").format(
                         n=len(ids), limit=limit))
        ids = ids[:limit]
    return ids, r.text[:limit]


def default_prime(dataset_name: str) -> str:
    """The Generate page's first prime: a speaker for Shakespeare; for a Chinese corpus a poem's title line
    (Du Fu's 《春望》), after which its training text has a poem; else none (a new line)."""
    from karp_models.data import chinese
    return "ROMEO.\n" if dataset_name == "shakespeare" else "《春望》\n" if dataset_name in chinese.CORPORA else ""


def prepare_prime(prime: str, vocab: Sequence[str], where=st) -> tuple[list[int], str]:
    """Ids and text of the prime the model reads first (tx.read, with the same messages); a newline, shown as
    nothing, when it reads none of it (training text starts its lines so), else the vocabulary's first
    character."""
    r = tx.read(vocab, prime)
    show_reading(r, where, what="prime")
    if r.ids:
        return r.ids, r.text
    return ([list(vocab).index("\n")], "") if "\n" in vocab else ([0], vocab[0])


def vocab_of(ck) -> list[str]:
    """The checkpoint's character list (stored with the weights), or its dataset's."""
    if ck.meta.get("vocab"):
        return list(ck.meta["vocab"])
    from karp_models.ui.loaders import dataset
    return list(dataset(ck.meta["dataset"]).vocab)


@st.cache_data(show_spinner=False)
def sample_passage(dataset_name: str, length: int = 600, must_have: str = "") -> str:
    """A passage of the dataset's validation text: for a Chinese corpus, whole entries from its first regular
    poem on (lines of five- or seven-character phrases); else from a speech or line near character 2,000,
    containing `must_have` if it can."""
    from karp_models.data import chinese
    from karp_models.ui.loaders import dataset
    try:
        ds = dataset(dataset_name)
    except Exception:                                                  # dataset missing: a built-in line
        if dataset_name in chinese.CORPORA:
            return "《静夜思》\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"
        return "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
    val = ds.decode(ds.val_ids[:200_000])
    if dataset_name in chinese.CORPORA:
        start = chinese.first_verse(val)
        end = val.rfind("\n\n", start, start + length)                  # end with a whole entry
        return val[start:end + 1 if end > start else start + length]
    at = val.find(must_have) if must_have else -1
    start = max(0, at - length // 3) if at >= 0 else 2000
    para = val.find("\n\n", start, start + 300)                     # begin at a speech, else at a line
    start = para + 2 if para >= 0 else val.find("\n", start) + 1
    if at >= 0 and start > at:                  # that speech begins past what was asked for: its line
        start = val.rfind("\n", 0, at) + 1
    return val[start:start + length]
