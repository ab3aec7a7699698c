"""A synthetic translation task for seq2seq: dates written the ways people write them -> ISO 8601.

"3 March 2021", "mar 3, 21", "03/03/2021", "Wednesday, March 3rd 2021", "2021年3月3日",
"二〇二一年三月三日" -> "2021-03-03". The task
of Andrew Ng's deep-learning course exercise "Neural machine translation with attention" (which
used the Faker package for formats); here the formats are written out so the task has no
dependency and no locale. Every format has one fixed convention, so the answer is determined:
slashes are American (month/day/year), dots and dashes with a numeric month are European
(day.month.year); two-digit years mean 1950-2049. Dates range over 1950-01-01 .. 2049-12-31.
Chinese dates are year-month-day, as China writes them (2021年3月3日, 2021年3月3日 星期三); a year
in Chinese numerals is written digit by digit (二〇二一), a month or day as a number (十一, 二十, 三十一).

Held-out dates: a date whose day number (proleptic ordinal) is divisible by 10 is never
generated for the training split, only for 'val', so validation measures dates the model never saw.

Standalone on purpose (not in data/registry.py): it is generated, not loaded, and only the
seq2seq model uses it.
"""
from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence

import torch

# ---------------------------------------------------------------------------- formats

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ZH_DIGITS = "〇一二三四五六七八九"
ZH_WEEKDAYS = "一二三四五六日"  # 星期一 (Monday) .. 星期六, 星期日 (Sunday)
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
VAL_EVERY = 10  # ordinal % VAL_EVERY == 0: held out for validation


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def zh_number(n: int) -> str:
    """1..99 in Chinese numerals as a month or day is written: 1 -> '一', 10 -> '十', 11 -> '十一',
    20 -> '二十', 31 -> '三十一'."""
    if not 1 <= n <= 99:
        raise ValueError(f"zh_number covers 1..99, not {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else "十" if tens == 1 else ZH_DIGITS[tens] + "十"
    return head + (ZH_DIGITS[ones] if ones else "")


def _parts(d: dt.date) -> dict[str, str]:
    return dict(d=str(d.day), dd=f"{d.day:02d}", do=ordinal(d.day), m=str(d.month),
                mm=f"{d.month:02d}", Month=MONTHS[d.month - 1], Mon=MONTHS[d.month - 1][:3],
                yyyy=str(d.year), yy=f"{d.year % 100:02d}", Day=DAYS[d.weekday()],
                Dy=DAYS[d.weekday()][:3], zyyyy="".join(ZH_DIGITS[int(c)] for c in str(d.year)),
                zm=zh_number(d.month), zd=zh_number(d.day), zw=ZH_WEEKDAYS[d.weekday()])


# Each format is (template, case): case 'as' keeps the template's capitals; 'any' may also be
# written in lower or upper case by the generator.
FORMATS: tuple[tuple[str, str], ...] = (
    ("{d} {Month} {yyyy}", "any"),              # 3 March 2021
    ("{dd} {Month} {yyyy}", "any"),             # 03 March 2021
    ("{d} {Mon} {yyyy}", "any"),                # 3 Mar 2021
    ("{d} {Mon} {yy}", "any"),                  # 3 mar 21
    ("{Month} {d}, {yyyy}", "any"),             # March 3, 2021
    ("{Mon} {d}, {yy}", "any"),                 # mar 3, 21
    ("{Mon} {d} {yyyy}", "any"),                # Mar 3 2021
    ("{Month} {do}, {yyyy}", "any"),            # March 3rd, 2021
    ("{do} of {Month}, {yyyy}", "any"),         # 3rd of March, 2021
    ("{do} {Mon} {yyyy}", "any"),               # 3rd Mar 2021
    ("{Day}, {Month} {do} {yyyy}", "any"),      # Wednesday, March 3rd 2021
    ("{Day}, {d} {Month} {yyyy}", "any"),       # Wednesday, 3 March 2021
    ("{Dy}, {d} {Mon} {yyyy}", "any"),          # Wed, 3 Mar 2021
    ("{Dy} {Mon} {d} {yyyy}", "any"),           # Wed Mar 3 2021
    ("{dd}-{Mon}-{yyyy}", "any"),               # 03-Mar-2021
    ("{mm}/{dd}/{yyyy}", "as"),                 # 03/03/2021 (American: month first)
    ("{m}/{d}/{yy}", "as"),                     # 3/3/21
    ("{m}/{d}/{yyyy}", "as"),                   # 3/3/2021
    ("{dd}.{mm}.{yyyy}", "as"),                 # 03.03.2021 (European: day first)
    ("{d}.{m}.{yy}", "as"),                     # 3.3.21
    ("{dd}-{mm}-{yyyy}", "as"),                 # 03-03-2021 (European)
    ("{yyyy}/{mm}/{dd}", "as"),                 # 2021/03/03
    ("{yyyy}{mm}{dd}", "as"),                   # 20210303
    ("{yyyy}年{m}月{d}日", "as"),                # 2021年3月3日
    ("{zyyyy}年{zm}月{zd}日", "as"),             # 二〇二一年三月三日
    ("{yyyy}年{m}月{d}日 星期{zw}", "as"),        # 2021年3月3日 星期三
)


def write_date(d: dt.date, fmt: str, case: str = "as") -> str:
    """The date in one format; case 'lower' | 'upper' | 'as'."""
    s = fmt.format(**_parts(d))
    return s.lower() if case == "lower" else s.upper() if case == "upper" else s


def iso(d: dt.date) -> str:
    return d.isoformat()  # 2021-03-03

# ---------------------------------------------------------------------------- vocabularies

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SRC_CHARS = (" ',-./0123456789abcdefghijklmnopqrstuvwxyz"   # sources are lower-cased first
             "年月日星期〇一二三四五六七八九十")
TGT_CHARS = "-0123456789"
MAX_SRC = 40   # longest input the model reads (the longest format is 30 characters)
TGT_LEN = 10   # 'yyyy-mm-dd'


class Vocab:
    """Characters <-> ids; id 0 is padding. `specials` come first, then the characters."""

    def __init__(self, chars: str, specials: Sequence[str]) -> None:
        self.itos: list[str] = [PAD, *specials, *chars]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pad = 0
        self.unk = self.stoi.get(UNK)
        self.bos = self.stoi.get(BOS)
        self.eos = self.stoi.get(EOS)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, s: str) -> list[int]:
        return [self.stoi.get(ch, self.unk) if self.unk is not None else self.stoi[ch] for ch in s]

    def decode(self, ids: Sequence[int], *, stop_at_eos: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if stop_at_eos and i == self.eos:
                break
            if i in (self.pad, self.bos, self.eos):
                continue
            out.append(self.itos[i] if i != self.unk else "?")
        return "".join(out)


SRC = Vocab(SRC_CHARS, [UNK])
TGT = Vocab(TGT_CHARS, [BOS, EOS])


def normalise(text: str) -> str:
    """What the model reads: lower case, single spaces, at most MAX_SRC characters."""
    return " ".join(text.lower().split())[:MAX_SRC]


def encode_source(text: str) -> list[int]:
    """Source ids of normalise(text); characters outside SRC_CHARS become <unk>."""
    return SRC.encode(normalise(text))


def encode_target(iso_date: str) -> list[int]:
    """'2021-03-03' -> its ids followed by </s>."""
    return TGT.encode(iso_date) + [TGT.eos]


def decode_target(ids: Sequence[int]) -> str:
    return TGT.decode(ids)

# ---------------------------------------------------------------------------- generator


def is_val(d: dt.date) -> bool:
    return d.toordinal() % VAL_EVERY == 0


def random_date(rng: random.Random, split: str = "train") -> dt.date:
    """A uniform date in FIRST..LAST from the split ('train' | 'val' | 'all')."""
    span = LAST.toordinal() - FIRST.toordinal()
    while True:
        d = dt.date.fromordinal(FIRST.toordinal() + rng.randint(0, span))
        if split == "all" or is_val(d) == (split == "val"):
            return d


def random_example(rng: random.Random, split: str = "train") -> tuple[str, str, dt.date]:
    """(human text, ISO text, the date)."""
    d = random_date(rng, split)
    fmt, case = FORMATS[rng.randrange(len(FORMATS))]
    if case == "any":
        case = rng.choices(("as", "lower", "upper"), weights=(3, 2, 1))[0]
    return write_date(d, fmt, case), iso(d), d


def examples(n: int, seed: int = 0, split: str = "train") -> list[tuple[str, str]]:
    """n (human, ISO) pairs; the same seed gives the same list."""
    rng = random.Random(f"dates/{split}/{seed}")
    return [random_example(rng, split)[:2] for _ in range(n)]


def batch(pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded id tensors: src (B, S) and tgt (B, TGT_LEN + 1) ending in </s>; padding is 0."""
    src = [encode_source(s) for s, _ in pairs]
    tgt = [encode_target(t) for _, t in pairs]
    S, T = max(1, max(len(s) for s in src)), max(len(t) for t in tgt)
    x = torch.zeros(len(pairs), S, dtype=torch.long)
    y = torch.zeros(len(pairs), T, dtype=torch.long)
    for i, (s, t) in enumerate(zip(src, tgt)):
        x[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        y[i, :len(t)] = torch.tensor(t, dtype=torch.long)
    return x, y


def batches(batch_size: int, seed: int = 0, split: str = "train"
            ) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A function returning a fresh random training batch each call (an endless, seeded stream)."""
    rng = random.Random(f"dates/{split}/stream/{seed}")

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        return batch([random_example(rng, split)[:2] for _ in range(batch_size)])

    return next_batch


def parse_iso(text: str) -> dt.date | None:
    """The date an ISO string names, or None when it is not a real date."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
