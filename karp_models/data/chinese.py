"""Chinese text datasets from Debian's fortunes-zh: the Three Hundred Tang Poems and a classical corpus.

tang300: the Tang poems of `tang300`. classical-zh: `tang300`, the Song poems of `song100` and the
classical part of `chinese` (sayings, the Analects, the Dao De Jing, the Book of Songs, ci, proverbs),
without its Debian manual, technical quotes and modern prose. Read from /usr/share/games/fortunes
(fortune format: entries between lines holding '%', titles and authors in ANSI colours).

What the corpus keeps, per entry: an optional title line 《...》 (the poem's title, or the work a saying
comes from), then the text lines; authors, dates and attributions are dropped. Entries are joined by a
blank line (a separator the model learns, as names uses newlines). Text is normalised by normalise_zh:
NFKC (the house rule), then Chinese punctuation back in its full-width forms (，。？！：；), as a Chinese
keyboard types it and the three files mostly write it; pass a prompt through normalise_zh too.

An entry of `chinese` is dropped when (see reject_reason) its text, title or attribution has a character
other than Chinese characters and Chinese punctuation (Latin letters, digits, box drawing, emoticons,
□ for a lost character, bracketed notes), or its text has a vernacular particle (的 们 吗 呢 吧 您 啊 咱
呀), which classical Chinese does not use. Split: entries ordered by a seeded hash of their text; the
first ones, up to 10% of the characters, are validation, so whole poems stay on one side (and with
fortunes-zh 2.98 every tang300 validation poem is in classical-zh's validation too).
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from karp_models.data.base import DatasetMissing, DatasetStatus, TextData
from karp_models.data.cache import cached_arrays, source_key
from karp_models.data.text import VAL_FRACTION, char_arrays, char_data
from karp_models.i18n import N_, _

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_ENV = "KARP_FORTUNES_ZH_DIR"
APT_FORTUNES = "sudo apt-get install fortunes-zh"
FILES = ("tang300", "song100", "chinese")
SPLIT_SEED = "karp-zh/0"
PARSER = 1  # bump when what the corpus keeps changes (part of the cache key)

# --- normalising text

# After NFKC: ASCII punctuation back to the full-width forms Chinese text uses; one middle dot (U+00B7);
# corner brackets to the mainland's curly quotes.
_FOLD = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；", "(": "（", ")": "）",
                       ".": "。", "\u30fb": "·", "\u2027": "·", "\u2022": "·", "「": "“", "」": "”",
                       "『": "‘", "』": "’"})
PUNCTUATION = "，。、；：？！“”‘’《》〈〉·…—"  # in the text; a title may also have （）
VERNACULAR = "的们吗呢吧您啊咱呀"


def is_hanzi(ch: str) -> bool:
    """A CJK unified ideograph (basic block, extension A, extensions B and later) or 〇."""
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x3FFFF or ch == "〇"


def normalise_zh(text: str) -> str:
    """NFKC, then Chinese punctuation in full-width form, '……' for any '...', no spaces inside a line.

    Idempotent; line breaks are kept, spaces and tabs (also U+3000) removed, since Chinese does not
    separate words. Apply it to a prompt before encoding it with a tang300 / classical-zh vocabulary.
    """
    s = unicodedata.normalize("NFKC", text).replace("...", "…").translate(_FOLD)
    return "\n".join(re.sub(r"[^\S\n]+", "", line) for line in s.split("\n"))


_VERSE_LINE = re.compile(r"(?:[^，。？！；\n]{5}[，。？！；]){2}|(?:[^，。？！；\n]{7}[，。？！；]){2}")


def is_regular_verse(entry: str) -> bool:
    """True for an entry of corpus text (optional 《title》 line, then lines) whose every text line is a couplet
    of two five-character or two seven-character phrases, each closed by ，。？！； (a regulated poem's shape)."""
    lines = [ln for ln in entry.strip("\n").split("\n") if ln]
    if lines and lines[0].startswith("《"):
        lines = lines[1:]
    return bool(lines) and all(_VERSE_LINE.fullmatch(ln) for ln in lines)


def first_verse(text: str, start: int = 0) -> int:
    """Offset in corpus text (entries set apart by a blank line) of the first regular poem (is_regular_verse)
    that begins at or after `start`; `start` itself when there is none."""
    at = start
    if at > 0 and text[at - 2:at] != "\n\n":                           # from the next entry
        nxt = text.find("\n\n", at)
        at = len(text) if nxt < 0 else nxt + 2
    while at < len(text):
        end = text.find("\n\n", at)
        end = len(text) if end < 0 else end
        if is_regular_verse(text[at:end]):
            return at
        at = end + 2
    return start


# --- reading fortune files

_SGR = re.compile(r"(?:\x1b|\^\[)\[[0-9;]*m")  # colour codes; a few are written out as '^[[32m'
_TITLE = re.compile(r"《[^》]*》")
_DYNASTY_AUTHOR = re.compile(r"^\[[^\]]{1,4}\]\s*\S{1,10}$")  # '[唐] 韩愈' under a title


def fortune_entries(raw: str) -> list[str]:
    """The entries of a fortune file: the text between lines holding only '%' (blanks around it allowed)."""
    entries, cur = [], []
    for line in raw.replace("\r\n", "\n").split("\n"):
        if line.strip() == "%":
            entries.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    entries.append("\n".join(cur))
    return [e.strip("\n") for e in entries if e.strip()]


@dataclass(frozen=True)
class Entry:
    """One entry as the corpus keeps it: title ('《...》' or '') and text lines, normalised."""

    title: str
    lines: tuple[str, ...]
    attribution: str = ""  # the '-- author《work》' line, normalised; not in the corpus

    @property
    def text(self) -> str:
        return "\n".join(((self.title,) if self.title else ()) + self.lines)

    @property
    def key(self) -> str:
        """The text's characters without punctuation or title: equal keys are the same text."""
        return "".join(ch for ch in "".join(self.lines) if is_hanzi(ch))


def _title_of(s: str) -> str:
    s = normalise_zh(s).removeprefix("题目：")
    m = _TITLE.search(s)
    t = m.group(0)[1:-1] if m else s
    t = t.split("/")[0].replace("-", "·")  # 'A / B' names two titles: keep the first; '水调歌头-游泳'
    return f"《{t}》" if t else ""


def _has_punct(s: str) -> bool:
    return any(ch in PUNCTUATION for ch in normalise_zh(s))


def parse_entry(raw: str) -> Entry:
    """Title, text lines and attribution of one raw entry; colour codes, authors and dates removed.

    A green line (or an indented heading without punctuation) before the text is the title (its
    《...》 part: '七律《长征》' -> '《长征》'); a yellow line before the text is the author; a line
    starting '--' is the attribution (the title then comes from its 《...》 when there was none); a
    '[唐] 韩愈' line makes the line above it the title.
    """
    title, attribution, body = "", "", []
    for line in raw.split("\n"):
        plain = _SGR.sub("", line).strip()
        if not plain:
            continue
        if plain.startswith("--"):
            attribution = normalise_zh(plain[2:])
            continue
        if not body and not title and ("\x1b[32m" in line or line[:4].isspace() and not _has_punct(plain)):
            title = _title_of(plain)  # green, or an indented heading ('    中庸 - 第一章')
            continue
        if not body and line.lstrip().startswith("\x1b[33m"):
            continue  # author, years
        if _DYNASTY_AUTHOR.match(plain):
            if len(body) == 1 and not title:
                title = _title_of(body.pop())
            continue
        body.append(normalise_zh(plain))
    if not title and attribution and _TITLE.search(attribution):
        title = _title_of(attribution)
    return Entry(title, tuple(ln for ln in body if ln), attribution)


def reject_reason(entry: Entry) -> str | None:
    """Why an entry of `chinese` is left out of the corpus, or None to keep it.

    'not Chinese': a character other than Chinese characters and PUNCTUATION in the text (Debian manual
    and reference card, emoticons, □ for a lost character, bracketed or parenthesised notes) or title
    (which may also have （）), or a Latin letter or digit in the attribution (technical quotes such as
    Raymond's or Torvalds's). 'vernacular': a particle of modern Chinese (VERNACULAR) in the text.
    """
    if not entry.lines:
        return "empty"
    if (any(not (is_hanzi(ch) or ch in PUNCTUATION) for ln in entry.lines for ch in ln)
            or any(not (is_hanzi(ch) or ch in PUNCTUATION + "（）") for ch in entry.title)
            or re.search(r"[A-Za-z0-9]", entry.attribution)):
        return "not Chinese"
    if any(ch in VERNACULAR for ln in entry.lines for ch in ln):
        return "vernacular"
    return None


def read_fortunes(path: Path, *, filtered: bool = True) -> list[Entry]:
    """The entries of one fortune file, parsed, in file order; with `filtered`, only those kept."""
    entries = [parse_entry(e) for e in fortune_entries(path.read_text(encoding="utf-8"))]
    return [e for e in entries if not filtered or reject_reason(e) is None]


# --- the corpora


def dedup(entries: list[Entry]) -> list[Entry]:
    """Entries in order without repeats: an entry whose key lies inside another entry's key (the same
    text, or a couplet quoted from a poem the corpus has whole) is dropped; of equal keys the first stays."""
    order = sorted(range(len(entries)), key=lambda i: -len(entries[i].key))  # stable: first of equals first
    hay, keep = "", set()
    for i in order:
        k = entries[i].key
        if k not in hay:
            keep.add(i)
            hay += "\n" + k
    return [e for i, e in enumerate(entries) if i in keep]


def split_rank(entry: Entry) -> float:
    """The entry's place in the fixed split order: a seeded hash of its key, in [0, 1)."""
    h = hashlib.blake2b(f"{SPLIT_SEED}/{entry.key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2 ** 64


def split_entries(entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(train, validation), each in corpus order, whole entries on one side.

    Validation takes the entries of lowest split_rank until they hold VAL_FRACTION of the corpus's
    characters (the entry that crosses the line goes where the total comes closer), so a split
    depends on each entry's own text, not on its neighbours.
    """
    size = [len(e.text) + 2 for e in entries]  # its characters in corpus_text
    target, acc, val = VAL_FRACTION * sum(size), 0, set()
    for i in sorted(range(len(entries)), key=lambda i: split_rank(entries[i])):
        if acc + size[i] / 2 > target:
            break
        acc += size[i]
        val.add(i)
    return ([e for i, e in enumerate(entries) if i not in val], [e for i, e in enumerate(entries) if i in val])


def corpus_text(entries: list[Entry]) -> str:
    """Each entry's text followed by a blank line."""
    return "".join(e.text + "\n\n" for e in entries)


@dataclass(frozen=True)
class Corpus:
    name: str
    files: tuple[str, ...]   # fortune files read, in this order
    what: str                # in words, for the status line (msgids: shown through _())
    unit: str                # how its entries are counted: '{n:,} poems', '{n:,} entries'
    note: str


CORPORA = {c.name: c for c in (
    Corpus("tang300", ("tang300",), N_("Three Hundred Tang Poems"), N_("{n:,} poems"),
           N_("each poem its title line 《...》 and its lines (authors dropped), poems set apart by a blank "
              "line; validation: the poems first in a seeded hash order, up to a tenth of the characters")),
    Corpus("classical-zh", FILES, N_("Tang poems, Song poems, classical sayings, the Analects, the Book of "
                                     "Songs, ci and proverbs"), N_("{n:,} entries"),
           N_("tang300 + song100 + the classical part of chinese (its Debian manual, technical quotes, "
              "modern prose and entries with Latin letters, digits or vernacular particles left out; quotes "
              "of a poem already in the corpus dropped); title line 《...》 when the source names one; "
              "entries set apart by a blank line; validation: the entries first in tang300's hash order, up "
              "to a tenth of the characters")),
)}


def corpus_entries(name: str, folder: Path) -> list[Entry]:
    """The entries of corpus `name` read from `folder`, filtered and deduplicated, in file order."""
    entries: list[Entry] = []
    for f in CORPORA[name].files:
        entries += read_fortunes(folder / f)
    return dedup(entries)


# --- where the files are

def locate_fortunes(root: str | os.PathLike | None, files: tuple[str, ...]) -> tuple[Path | None, str]:
    """The folder holding `files`, and a note on a named folder that did not.

    Order: `root`, $KARP_FORTUNES_ZH_DIR, Debian's /usr/share/games/fortunes. A `root` without the
    files is an error (None returned).
    """
    def has(d: Path) -> bool:
        return all((d / f).is_file() for f in files)

    if root is not None:
        return (Path(root), "") if has(Path(root)) else (
            None, _("{folder} has no {files}").format(folder=root, files=", ".join(files)))
    notes = []
    env = os.environ.get(FORTUNES_ENV)
    if env:
        if has(Path(env)):
            return Path(env), ""
        notes.append(_("${variable}={folder} has no {files}, ignored").format(
            variable=FORTUNES_ENV, folder=env, files=", ".join(files)))
    if has(FORTUNES_DIR):
        return FORTUNES_DIR, "; ".join(notes)
    notes.append(_("no {files} in {folder}").format(files=", ".join(files), folder=FORTUNES_DIR))
    return None, "; ".join(notes)


# Sizes for the files we have checked (keyed by the files' byte sizes; tests compare them with a real
# load), so status() reports them without parsing 2 MB of text.
KNOWN: dict[tuple[str, tuple[int, ...]], dict[str, int | str]] = {
    ("tang300", (88927,)): {"version": "2.98", "entries": 313, "train": 24843, "validation": 2725,
                            "vocab": 2552},
    ("classical-zh", (88927, 28533, 2116476)): {"version": "2.98", "entries": 4202, "train": 214309,
                                                "validation": 23804, "vocab": 5688},
}


def _words(c: Corpus, folder: Path, n_entries: int | None, n_chars: int | None, version: str = "") -> str:
    pkg = f"Debian fortunes-zh {version}".rstrip() if folder == FORTUNES_DIR else _("fortunes-zh files")
    counts = ", ".join(x for x in (_(c.unit).format(n=n_entries) if n_entries else "",
                                   _("{n:,} characters").format(n=n_chars) if n_chars else "") if x)
    text = _("{package} in {folder} ({files}): {what}").format(package=pkg, folder=folder,
                                                               files=", ".join(c.files), what=_(c.what))
    return _("{text}; {counts}").format(text=text, counts=counts) if counts else text


def _missing(name: str, why: str) -> str:
    return _("{name} needs Debian's fortunes-zh ({why}). Get it with:\n  {apt}\nor set ${variable} to a "
             "folder holding {files}.").format(name=name, why=why, apt=APT_FORTUNES, variable=FORTUNES_ENV,
                                               files=", ".join(CORPORA[name].files))


def status(name: str, root: str | os.PathLike | None = None) -> DatasetStatus:
    """The DatasetStatus of corpus `name` (fast: known sizes, no parsing)."""
    c = CORPORA[name]
    folder, why = locate_fortunes(root, c.files)
    if folder is None:
        return DatasetStatus(name, "text", False, _("not found"), how_to_get=APT_FORTUNES,
                             note=_("{why}; or set ${variable} to a folder holding {files}").format(
                                 why=why, variable=FORTUNES_ENV, files=", ".join(c.files)))
    known = KNOWN.get((name, tuple((folder / f).stat().st_size for f in c.files)))
    sizes = {k: int(known[k]) for k in ("train", "validation")} if known else {}
    return DatasetStatus(name, "text", True,
                         _words(c, folder, known and int(known["entries"]), known and sum(sizes.values()),
                                str(known["version"]) if known else ""),
                         note=_("{text}; {why}").format(text=_(c.note), why=why) if why else _(c.note),
                         sizes=sizes,
                         vocab_size=int(known["vocab"]) if known else None)


def load(name: str, root: str | os.PathLike | None = None) -> TextData:
    """Corpus `name` as a TextData (cached on disk by the files' paths, sizes and times).

    Raises:
        DatasetMissing: the files are not found; the message says `sudo apt-get install fortunes-zh`.
    """
    c = CORPORA[name]
    folder, why = locate_fortunes(root, c.files)
    if folder is None:
        raise DatasetMissing(_missing(name, why))
    return _load(name, folder, source_key(name, PARSER, files=[folder / f for f in c.files]))


@functools.lru_cache(maxsize=4)
def _load(name: str, folder: Path, key: str) -> TextData:
    def build() -> dict[str, np.ndarray]:
        train, val = split_entries(corpus_entries(name, folder))
        a = char_arrays(corpus_text(train), corpus_text(val))
        a["n_entries"] = np.array(len(train) + len(val))
        return a

    a = cached_arrays(name, key, build)
    c = CORPORA[name]
    known = KNOWN.get((name, tuple((folder / f).stat().st_size for f in c.files)))
    n_chars = len(a["train_ids"]) + len(a["val_ids"])
    return char_data(name, a, _words(c, folder, int(a["n_entries"]), n_chars,
                                     str(known["version"]) if known else ""), _(c.note))


def tang300_status(root: str | os.PathLike | None = None) -> DatasetStatus:
    return status("tang300", root)


def load_tang300(root: str | os.PathLike | None = None) -> TextData:
    return load("tang300", root)


def classical_status(root: str | os.PathLike | None = None) -> DatasetStatus:
    return status("classical-zh", root)


def load_classical(root: str | os.PathLike | None = None) -> TextData:
    return load("classical-zh", root)
