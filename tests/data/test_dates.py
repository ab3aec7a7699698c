"""The dates task: the generator writes the date it claims (checked with a strptime reference
parser), encode/decode round-trips, seeds reproduce, and held-out dates never reach training."""
import datetime as dt
import random
import re

import pytest
import torch

from karp_models.data import dates

STRPTIME = {"{d}": "%d", "{dd}": "%d", "{do}": "%d", "{m}": "%m", "{mm}": "%m", "{Month}": "%B",
            "{Mon}": "%b", "{yyyy}": "%Y", "{yy}": "%y", "{Day}": "%A", "{Dy}": "%a",
            "{zyyyy}": "%Y", "{zm}": "%m", "{zd}": "%d", "{zw}": ""}
ZH_DIGIT = {ch: i for i, ch in enumerate("〇一二三四五六七八九")}


def zh_to_arabic(text: str) -> str:
    """Chinese numerals to digits, independently of the generator: a year digit by digit before 年,
    a month or day as a number (十 alone is 10, 二十 is 2 tens, 十一 is 10 + 1) before 月 or 日."""
    text = re.sub(r"[〇一二三四五六七八九]{4}(?=年)", lambda m: "".join(str(ZH_DIGIT[c]) for c in m[0]), text)

    def number(m: re.Match) -> str:
        tens, _, ones = m[0].rpartition("十")
        if "十" not in m[0]:
            return str(ZH_DIGIT[ones])
        return str(10 * (ZH_DIGIT[tens] if tens else 1) + (ZH_DIGIT[ones] if ones else 0))

    return re.sub(r"[一二三四五六七八九十]+(?=[月日])", number, text)


def reference_parse(text: str, template: str) -> dt.date:
    """Read `text` back with datetime.strptime, independently of the generator's code."""
    pattern = template
    for k, v in STRPTIME.items():
        pattern = pattern.replace(k, v)
    clean = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text, flags=re.IGNORECASE)
    weekday = None
    if "{zw}" in template:                       # 星期一 .. 星期日: Monday .. Sunday
        clean, weekday = clean[:-1], clean[-1]
    d = dt.datetime.strptime(zh_to_arabic(clean), pattern).date()
    if "{yy}" in template:                       # our rule: 50-99 -> 19xx, 00-49 -> 20xx
        yy = d.year % 100
        d = d.replace(year=(1900 if yy >= 50 else 2000) + yy)
    if "{Day}" in template or "{Dy}" in template:
        assert text.lower().startswith(dates.DAYS[d.weekday()][:3].lower()), text
    if weekday is not None:
        assert "一二三四五六日".index(weekday) == d.weekday(), text
    return d


@pytest.mark.parametrize("template,case", dates.FORMATS)
def test_every_format_writes_the_date_it_claims(template, case):
    rng = random.Random(template)
    for _ in range(40):
        d = dates.random_date(rng, "all")
        for c in (("as", "lower", "upper") if case == "any" else ("as",)):
            text = dates.write_date(d, template, c)
            assert reference_parse(text, template) == d, (text, template)
            assert dates.parse_iso(dates.iso(d)) == d


def test_generated_pairs_round_trip_through_the_vocabularies():
    rng = random.Random(0)
    for _ in range(300):
        text, iso, d = dates.random_example(rng)
        ids = dates.encode_source(text)
        assert dates.SRC.unk not in ids, text
        assert dates.SRC.decode(ids) == dates.normalise(text) == " ".join(text.lower().split())
        assert len(ids) <= dates.MAX_SRC
        tgt = dates.encode_target(iso)
        assert tgt[-1] == dates.TGT.eos and len(tgt) == dates.TGT_LEN + 1
        assert dates.decode_target(tgt) == iso
        assert dates.parse_iso(dates.decode_target(tgt)) == d


def test_unknown_characters_become_unk_and_decode_as_question_marks():
    ids = dates.encode_source("3 März 2021")
    assert dates.SRC.unk in ids
    assert dates.SRC.decode(ids) == "3 m?rz 2021"
    assert dates.parse_iso("2021-02-30") is None


def test_chinese_formats_write_the_numbers_as_chinese_does():
    d = dt.date(2026, 11, 30)  # a Monday
    assert dates.write_date(d, "{yyyy}年{m}月{d}日") == "2026年11月30日"
    assert dates.write_date(d, "{zyyyy}年{zm}月{zd}日") == "二〇二六年十一月三十日"
    assert dates.write_date(d, "{yyyy}年{m}月{d}日 星期{zw}") == "2026年11月30日 星期一"
    assert [dates.zh_number(n) for n in (1, 9, 10, 11, 19, 20, 21, 30, 31)] == [
        "一", "九", "十", "十一", "十九", "二十", "二十一", "三十", "三十一"]
    assert dates.write_date(dt.date(2000, 1, 1), "{zyyyy}年{zm}月{zd}日") == "二〇〇〇年一月一日"
    assert (dates.write_date(dt.date(2049, 12, 31), "{zyyyy}年{zm}月{zd}日 星期{zw}")
            == "二〇四九年十二月三十一日 星期五")
    assert dates.SRC.unk not in dates.encode_source("二〇二六年十一月三十日 星期日")


def test_seeded_generator_is_reproducible():
    assert dates.examples(50, seed=1) == dates.examples(50, seed=1)
    assert dates.examples(50, seed=1) != dates.examples(50, seed=2)
    a, b = dates.batches(8, seed=3), dates.batches(8, seed=3)
    for _ in range(3):
        (xa, ya), (xb, yb) = a(), b()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_held_out_dates_never_reach_the_training_split():
    rng = random.Random(1)
    assert not any(dates.is_val(dates.random_date(rng, "train")) for _ in range(2000))
    assert all(dates.is_val(dates.random_date(rng, "val")) for _ in range(200))
    train_isos = {iso for _, iso in dates.examples(2000, seed=0, split="train")}
    val_isos = {iso for _, iso in dates.examples(200, seed=0, split="val")}
    assert not train_isos & val_isos


def test_batch_pads_with_zero():
    x, y = dates.batch([("3/3/21", "2021-03-03"), ("Wednesday, March 3rd 2021", "2021-03-03")])
    assert x.shape == (2, 25) and y.shape == (2, dates.TGT_LEN + 1)
    assert (x[0, 6:] == dates.SRC.pad).all() and (x[0, :6] != dates.SRC.pad).all()
    assert torch.equal(y[0], y[1])
