"""The translation catalogs, checked against the code with Babel itself: every message the code
marks (extracted in memory, as `pybabel extract` does) is in the template and has a finished
Chinese translation; translations keep the message's placeholders, markdown and HTML; the
committed .mo is the compiled .po; glossary words are found in the sentences that underline them.

When this fails after adding or changing a string, run the commands in the README's
"Translations" section (extract, update, translate, compile)."""
from __future__ import annotations

import ast
import io
import re
import string
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from karp_models import i18n
from karp_models.i18n import _

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "karp_models" / "locale"
# the keywords of the README's `pybabel extract` (-k N_ -k NC_:1c,2 -k L_) on top of Babel's own
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "NC_": ((1, "c"), 2), "L_": None}


def extracted() -> dict[tuple[str | None, str], list[str]]:
    """(context, msgid) -> the files it comes from, for app.py, pages/ and karp_models/."""
    with open(LOCALE / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[tuple[str | None, str], list[str]] = {}

    def add(path: str, message, context) -> None:
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault((context, msgid), []).append(path)

    for _lineno, message, _comments, context in extract_from_file("python", ROOT / "app.py",
                                                                   keywords=KEYWORDS):
        add("app.py", message, context)
    for folder in ("pages", "karp_models"):
        for path, _lineno, message, _comments, context in extract_from_dir(
                ROOT / folder, method_map, options_map, keywords=KEYWORDS):
            add(f"{folder}/{path}", message, context)
    return found


EXTRACTED = extracted()
with open(LOCALE / "zh_CN" / "LC_MESSAGES" / "karp.po", "rb") as _f:
    ZH = read_po(_f)


def key(m) -> tuple[str | None, str]:
    return m.context, m.id if isinstance(m.id, str) else m.id[0]


def strings(m) -> list[str]:
    return [m.string] if isinstance(m.string, str) else list(m.string)


def ids(m) -> list[str]:
    return [m.id] if isinstance(m.id, str) else list(m.id)


def test_the_code_marks_a_catalog_worth_of_messages():
    assert len(EXTRACTED) > 1000
    assert (None, "Start training") in EXTRACTED and ("glossary", "logit") in EXTRACTED


def test_the_template_is_current():
    with open(LOCALE / "karp.pot", "rb") as f:
        pot = {key(m) for m in read_po(f) if m.id}
    assert set(EXTRACTED) - pot == set(), "not in karp.pot: run pybabel extract"
    assert pot - set(EXTRACTED) == set(), "gone from the code but still in karp.pot: run pybabel extract"


def test_every_message_has_a_finished_chinese_translation():
    missing = []
    for k, where in EXTRACTED.items():
        m = ZH.get(k[1], context=k[0])
        if m is None or m.fuzzy or not all(s.strip() for s in strings(m)):
            missing.append(f"{where[0]}: {k[1]!r}" + (" (fuzzy)" if m is not None and m.fuzzy else ""))
    assert not missing, f"{len(missing)} without a Chinese translation:\n" + "\n".join(missing[:40])


def fields(text: str) -> Counter:
    """The {name:spec} placeholders of a message (str.format's, also plotly's %{x:.2f})."""
    return Counter(f"{name}:{spec}" for _lit, name, spec, _conv in string.Formatter().parse(text)
                   if name is not None)


def marks(text: str) -> Counter:
    """Markdown emphasis and code, and HTML tags, which a translation must keep."""
    tags = re.findall(r"</?\w+\s*/?>", text)
    return Counter(tags + ["**"] * text.count("**") + ["`"] * text.count("`")
                   + [":green["] * text.count(":green[") + [":red["] * text.count(":red["))


@pytest.mark.parametrize("check", [fields, marks], ids=["placeholders", "markdown and HTML"])
def test_translations_keep_what_the_code_fills_in_and_how_it_is_shown(check):
    wrong = []
    for m in ZH:
        if not m.id or m.fuzzy:
            continue
        want = check(ids(m)[0])
        for s in strings(m):
            if s and check(s) != want:
                wrong.append(f"{m.id!r}\n    -> {s!r}\n    {dict(check(s))} != {dict(want)}")
    assert not wrong, "\n".join(wrong)


def test_babels_own_checks_pass():
    """What `pybabel compile` checks (plural forms, %-placeholders); it exits 1 on any."""
    problems = [(m.id, [str(e) for e in errors]) for m, errors in ZH.check()]
    assert not problems


def test_the_compiled_catalog_is_the_po_file():
    """The .mo the app loads, read back, says what the .po says: pybabel compile was run."""
    with open(LOCALE / "zh_CN" / "LC_MESSAGES" / "karp.mo", "rb") as f:
        committed = read_mo(f)
    buf = io.BytesIO()
    write_mo(buf, ZH, use_fuzzy=False)
    buf.seek(0)
    fresh = read_mo(buf)

    def table(cat) -> dict:
        return {key(m): tuple(strings(m)) for m in cat if m.id}
    assert table(committed) == table(fresh), "karp.mo is stale: run pybabel compile"


def hover_calls() -> list[tuple[str, str, tuple[str, ...]]]:
    """(file, msgid, terms) of every glossary.hover(_("..."), "term", ...) in the app."""
    out = []
    for path in [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "karp_models" / "ui").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "hover" and node.args):
                continue
            text = node.args[0]
            while isinstance(text, ast.Call) and isinstance(text.func, ast.Attribute):  # _("...").format()
                text = text.func.value
            if (isinstance(text, ast.Call) and isinstance(text.func, ast.Name) and text.func.id == "_"
                    and isinstance(text.args[0], ast.Constant)):
                terms = tuple(a.value for a in node.args[1:] if isinstance(a, ast.Constant))
                out.append((path.name, text.args[0].value, terms))
    return out


def test_the_chinese_sentences_contain_the_glossary_words_they_underline():
    """hover() underlines a term where the sentence has its word: in Chinese, the catalog's word
    for the term (pgettext("glossary", term)) must be in the translated sentence."""
    from karp_models.ui import glossary

    calls = hover_calls()
    assert len(calls) >= 6
    lost = []
    with i18n.using("zh"):
        for where, msgid, terms in calls:
            for term in terms:
                if not glossary._pattern(glossary.word(term)).search(_(msgid)):
                    lost.append(f"{where}: {glossary.word(term)!r} not in {_(msgid)[:60]!r}…")
    assert not lost, "\n".join(lost)


def literal_bold_marks(text: str) -> int:
    """How many '**' runs of `text` Markdown shows as they are: CommonMark's delimiter-run rules
    (spec 0.31, 'Emphasis and strong emphasis'), which a full-width colon or question mark just
    inside the bold breaks ('**标题：**正文' is not bold)."""
    import unicodedata

    def punct(ch: str) -> bool:
        return unicodedata.category(ch)[0] in "PS"

    text = re.sub(r"\{[^{}]*\}", "x", text)     # a placeholder: what fills it may start with a letter
    stack, literal = [], 0
    for m in re.finditer(r"(?<!\*)\*\*(?!\*)", text):
        before = text[m.start() - 1] if m.start() else " "
        after = text[m.end()] if m.end() < len(text) else " "
        opens = not after.isspace() and (not punct(after) or before.isspace() or punct(before))
        closes = not before.isspace() and (not punct(before) or after.isspace() or punct(after))
        if closes and stack:
            stack.pop()
        elif opens:
            stack.append(m.start())
        else:
            literal += 1
    return literal + len(stack)


def test_bold_marks_rule_follows_commonmark():
    assert literal_bold_marks("**粗体**：正文") == 0 and literal_bold_marks("**Bold:** text") == 0
    assert literal_bold_marks("**标题：**正文") == 2 and literal_bold_marks("**原因？**正文") == 2
    assert literal_bold_marks("类别 **{name}**（x）") == 0 and literal_bold_marks("**失败：**{error}") == 2


def test_chinese_bold_renders_as_bold():
    """A Chinese message keeps the English one's bold: no '**' left showing (QA: the RL page's
    '**整个回合中的价值估计：**' showed its asterisks on the projector)."""
    shown = [m.string for m in ZH if m.id and not isinstance(m.id, tuple) and m.string
             and not literal_bold_marks(m.id) and literal_bold_marks(m.string)]
    assert not shown, shown
