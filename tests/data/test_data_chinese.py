"""Chinese text datasets from fortunes-zh: small fortune files written here for the parsing, the filter
and the split; the real files (when installed) for the sizes status() reports without loading."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from karp_models import data
from karp_models.data import chinese as zh

G, Y, R = "\x1b[32m", "\x1b[33m", "\x1b[m"  # green (titles), yellow (authors), reset

TANG = [  # (title, author, lines) as tang300 writes them
    ("静夜思", "李白", ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]),
    ("登鹳雀楼", "王之涣", ["白日依山尽，黄河入海流。", "欲穷千里目，更上一层楼。"]),
    ("春晓", "孟浩然", ["春眠不觉晓，处处闻啼鸟。", "夜来风雨声，花落知多少。"]),
    ("相思", "王维", ["红豆生南国，春来发几枝。", "愿君多采撷，此物最相思。"]),
] + [(f"无题·其{i}", "佚名", [f"山{i}水远人稀，风{i}云月照衣。", "归来无一事，独坐看花飞。"])
     for i in "一二三四五六七八九十"]

CHINESE = [  # raw entries of `chinese`: what is kept, what is not
    "欲穷千里目，更上一层楼。\n" + Y + "    -- 王之涣" + G + "《登鹳雀楼》" + R + R,     # a quote of a poem above
    "学而不思则罔，思而不学则殆。\n" + Y + "    --" + G + "《论语》" + R + R,           # kept, titled
    G + "七律" + G + "《长征》" + R + R + "\n" + Y + "毛泽东 一九三五年十月" + R + "\n"
    "红军不怕远征难，\n万水千山只等闲。",                                                # kept, form dropped
    "\x1b[37;1m1.1. 控制台基础\x1b[;m\n\n    $ ls -l /etc\n" + Y + "    -- Osamu Aoki, Debian 参考手册" + R,
    "编程不是科学，编程是手艺。\n  -- 理查德·马修·斯托曼 (RMS) ",                    # Latin letters in attribution
    "狗咬穿烂的，人舔穿好的。\n" + Y + "    --" + G + "《谚语》" + R + R,               # vernacular 的
    "炮凤烹龙，放箸时与□盐无异。\n" + Y + "    --" + G + "《菜根谭》" + R + R,          # □ for a lost character
    "有朋自远方来,不亦乐乎?\n-- 论语",                                                  # half-width punctuation
    "^[[32m其二\x1b[m\n山，\n倒海翻江卷巨澜。",                                           # a colour code written out
    "(╯‵□′)╯︵┻━┻",
]


def write_fortunes(folder: Path) -> Path:
    """tang300, song100 and chinese in fortune format, with colour codes as the real files have them."""
    folder.mkdir(parents=True, exist_ok=True)
    tang = [f"{G}《{t}》{R}\n{Y}作者：{a}{R}\n" + "\n".join(lines) for t, a, lines in TANG]
    (folder / "tang300").write_text("\n%\n".join(tang) + "\n%\n", encoding="utf-8")
    song = (f"{G}题目:《泪》{R}\n{Y}作者:杨亿（９６４－１０２０）{R}\n锦字梭停掩夜机，白头吟若怨新知。\n"
            f"%    \n{G}题目:《春居杂兴》二首{R}\n{Y}作者:王禹偁{R}\n\n            其一\n\n两株桃杏映篱斜，妆点商山副使家。\n")
    (folder / "song100").write_text(song, encoding="utf-8")
    (folder / "chinese").write_text("\n%\n".join(CHINESE) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def fortunes(tmp_path, monkeypatch) -> Path:
    """Small fortune files in a folder named by $KARP_FORTUNES_ZH_DIR; an empty cache; no Debian copy."""
    monkeypatch.setenv("KARP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(zh, "FORTUNES_DIR", tmp_path / "no-debian")
    folder = write_fortunes(tmp_path / "fortunes")
    monkeypatch.setenv(zh.FORTUNES_ENV, str(folder))
    zh._load.cache_clear()
    return folder


def entries_of(text: str) -> list[str]:
    assert text.endswith("\n\n") and "\n\n\n" not in text
    return text[:-2].split("\n\n")

# --- reading


def test_entries_are_split_on_percent_lines_with_blanks_allowed():
    assert zh.fortune_entries("a\n%\nb\nc\n%   \n\n%\nd\n") == ["a", "b\nc", "d"]


def test_colour_codes_authors_and_dates_are_removed(fortunes):
    tang = zh.read_fortunes(fortunes / "tang300")
    assert tang[0] == zh.Entry("《静夜思》", ("床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"))
    song = zh.read_fortunes(fortunes / "song100")
    assert [e.text for e in song] == ["《泪》\n锦字梭停掩夜机，白头吟若怨新知。",
                                      "《春居杂兴》\n其一\n两株桃杏映篱斜，妆点商山副使家。"]
    kept = {e.text for e in zh.read_fortunes(fortunes / "chinese")}
    assert "《长征》\n红军不怕远征难，\n万水千山只等闲。" in kept  # '七律' and the author line gone
    assert "《论语》\n学而不思则罔，思而不学则殆。" in kept       # title from the attribution
    assert "其二\n山，\n倒海翻江卷巨澜。" in kept                  # '^[[32m' written out, stripped too
    for e in zh.read_fortunes(fortunes / "chinese", filtered=False):
        assert not re.search(r"\x1b|\^\[|\[[0-9;]*m", e.text), e.text


def test_non_chinese_and_vernacular_entries_are_dropped(fortunes):
    raw = zh.fortune_entries((fortunes / "chinese").read_text(encoding="utf-8"))
    assert [zh.reject_reason(zh.parse_entry(r)) for r in raw] == [
        None, None, None,
        "not Chinese",  # the Debian manual
        "not Chinese",  # a technical quote: Latin letters in its attribution
        "vernacular",   # 的
        "not Chinese",  # □ for a lost character
        None, None,
        "not Chinese"]  # an emoticon


def test_punctuation_is_normalised_to_full_width_chinese_forms():
    assert zh.normalise_zh("有朋自远方来,不亦乐乎?") == "有朋自远方来，不亦乐乎？"
    assert zh.normalise_zh("有朋自远方来，不亦乐乎？") == "有朋自远方来，不亦乐乎？"  # what an IME types
    assert zh.normalise_zh("《感遇・其一》 「曰」『善』...") == "《感遇·其一》“曰”‘善’…"
    assert zh.normalise_zh("９４６－９９９\u3000年\n二") == "946-999年\n二"  # NFKC: full-width digits
    s = "子曰：“学而时习之，不亦说乎？”\n《詩經‧國風》"
    assert zh.normalise_zh(zh.normalise_zh(s)) == zh.normalise_zh(s)


# --- the datasets


def test_regular_verse_and_the_first_poem_of_a_text():
    poem = "《静夜思》\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。"
    seven = "《黄鹤楼》\n昔人已乘黄鹤去，此地空余黄鹤楼。"
    saying = "《论语》\n学而不思则罔，思而不学则殆。"              # 6 + 6: not a poem's lines
    assert zh.is_regular_verse(poem) and zh.is_regular_verse(seven) and zh.is_regular_verse(poem.split("\n", 1)[1])
    assert not zh.is_regular_verse(saying) and not zh.is_regular_verse("《题》") and not zh.is_regular_verse("")
    assert not zh.is_regular_verse("《杂》\n床前明月光，疑是地上霜。\n红军不怕远征难，")   # one line is not a couplet
    text = saying + "\n\n" + poem + "\n\n" + seven + "\n\n"
    first, second = len(saying) + 2, len(saying) + len(poem) + 4
    assert zh.first_verse(text) == first and zh.first_verse(text, 1) == first and zh.first_verse(text, first) == first
    assert zh.first_verse(text, first + 1) == second                  # inside a poem: from the next entry
    assert zh.first_verse(saying) == 0 and zh.first_verse(text, second + 3) == second + 3   # none: where it started


def test_tang300_entries_split_and_vocabulary(fortunes):
    d = data.load("tang300")
    train, val = d.decode(d.train_ids), d.decode(d.val_ids)
    tr, va = entries_of(train), entries_of(val)
    poems = [zh.Entry(f"《{t}》", tuple(lines)).text for t, _, lines in TANG]
    assert sorted(tr + va) == sorted(poems)  # every poem whole, on exactly one side
    assert tr and va and not set(tr) & set(va)
    assert d.vocab == tuple(sorted(set(train + val)))
    assert "\x1b" not in train + val and not re.search(r"[A-Za-z0-9]", train + val)
    assert "作者" not in train + val and "李白" not in train + val


def test_classical_keeps_poems_drops_quotes_of_them_and_non_classical(fortunes):
    d = data.load("classical-zh")
    text = d.decode(d.train_ids) + d.decode(d.val_ids)
    entries = entries_of(d.decode(d.train_ids)) + entries_of(d.decode(d.val_ids))
    assert "《论语》\n学而不思则罔，思而不学则殆。" in entries
    assert "《泪》\n锦字梭停掩夜机，白头吟若怨新知。" in entries
    assert "有朋自远方来，不亦乐乎？" in entries
    assert text.count("欲穷千里目") == 1  # the quote is dropped, the poem stays
    for gone in ("Debian", "ls -l", "编程", "狗咬", "□", "┻"):
        assert gone not in text
    assert len(entries) == len(TANG) + 2 + 4


def test_the_split_is_fixed_across_calls_and_by_characters(fortunes, tmp_path, monkeypatch):
    a = data.load("classical-zh")
    zh._load.cache_clear()
    monkeypatch.setenv("KARP_CACHE", str(tmp_path / "other-cache"))  # built again from the files
    b = data.load("classical-zh")
    assert a is not b and a.vocab == b.vocab
    assert a.decode(a.val_ids) == b.decode(b.val_ids) and a.decode(a.train_ids) == b.decode(b.train_ids)
    many = [zh.Entry("", (chr(0x4E00 + i) * (5 + i % 7) + "。",)) for i in range(300)]
    tr, va = zh.split_entries(many)
    assert tr == [e for e in many if e not in va] and len(tr) + len(va) == len(many)
    share = len(zh.corpus_text(va)) / len(zh.corpus_text(many))
    assert abs(share - zh.VAL_FRACTION) < 0.01
    assert zh.split_entries(many[::-1])[1] == va[::-1]  # a side depends on the entry, not its place


def test_status_reports_the_folder_and_loads_agree(fortunes):
    st = data.status("tang300")
    assert st.available and st.kind == "text" and not st.how_to_get
    assert str(fortunes) in st.source
    d = data.load("tang300", root=fortunes)
    assert d.source.endswith(f"{len(TANG)} poems, {len(d.train_ids) + len(d.val_ids):,} characters")


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(zh, "FORTUNES_DIR", tmp_path / "none")
    monkeypatch.setenv(zh.FORTUNES_ENV, str(tmp_path / "empty"))
    for name in ("tang300", "classical-zh"):
        st = data.status(name)
        assert not st.available and st.how_to_get == "sudo apt-get install fortunes-zh"
        assert zh.FORTUNES_ENV in st.note and "ignored" in st.note
        with pytest.raises(data.DatasetMissing, match="sudo apt-get install fortunes-zh"):
            data.load(name)
    with pytest.raises(data.DatasetMissing, match="not a download.*\n  sudo apt-get install fortunes-zh"):
        data.download("tang300")
    with pytest.raises(data.DatasetMissing, match="has no tang300"):
        data.load("tang300", root=tmp_path)


# --- the real files, when installed

real = pytest.mark.skipif(not all((zh.FORTUNES_DIR / f).is_file() for f in zh.FILES),
                          reason="fortunes-zh is not installed (sudo apt-get install fortunes-zh)")


@pytest.fixture(scope="module")
def real_sets() -> Iterator[dict[str, data.TextData]]:
    mp = pytest.MonkeyPatch()
    mp.delenv(zh.FORTUNES_ENV, raising=False)
    zh._load.cache_clear()
    try:
        yield {n: data.load(n) for n in zh.CORPORA}
    finally:
        mp.undo()


@real
def test_known_sizes_match_a_real_load(real_sets):
    for name, d in real_sets.items():
        st = data.status(name)
        assert st.sizes == {"train": len(d.train_ids), "validation": len(d.val_ids)}, name
        assert st.vocab_size == d.vocab_size and st.source == d.source and "2.98" in st.source


@real
def test_real_corpora_are_classical_chinese_split_by_whole_poems(real_sets):
    tang, classical = real_sets["tang300"], real_sets["classical-zh"]
    assert "313 poems" in tang.source
    for d in (tang, classical):
        text = d.decode(d.train_ids) + d.decode(d.val_ids)
        assert not re.search(r"[A-Za-z0-9\x1b□%]", text) and "作者：" not in text
        assert len(d.val_ids) / (len(d.train_ids) + len(d.val_ids)) == pytest.approx(0.1, abs=0.005)
    tang_val = set(entries_of(tang.decode(tang.val_ids)))
    assert tang_val <= set(entries_of(classical.decode(classical.val_ids)))  # unseen by classical-zh models
    assert "《夜思》\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。" in (  # 静夜思, this edition's title
        entries_of(tang.decode(tang.train_ids)) + list(tang_val))
    lines = [ln for e in entries_of(tang.decode(tang.train_ids)) for ln in e.split("\n")[1:]]
    five_seven = sum(bool(re.fullmatch(r"\w{5}，\w{5}[。？！]|\w{7}，\w{7}[。？！]", ln)) for ln in lines)
    assert five_seven / len(lines) > 0.8  # the line structure a model can learn
