"""karp's translation functions over gettext catalogs (karp_models/locale/<lang>/LC_MESSAGES/
karp.po and .mo), kept with Babel's extract / update / compile (the commands are in the README;
Babel's and Django's workflow). A leaf: it imports nothing of karp_models and no Streamlit.

    from karp_models.i18n import _, N_
    st.button(_("Start training"))
    _("Step {step} of {total}").format(step=3, total=10)   # named placeholders: whole sentences
    CLASSES = (N_("Dress"), N_("Coat"))                     # marked now, translated when shown

The language of a call: an explicit `using(lang)` block first (a training job's worker thread
runs in the language of the session that started it), then the resolver a front end registers
with `set_language_resolver` (karp_models.ui: the Streamlit session's choice, read from its
session state on every call, so fragments and reruns follow a switch at once), then the
environment: KARP_LANG, else gettext's LANGUAGE / LC_ALL / LC_MESSAGES / LANG, else English.
"""
from __future__ import annotations

import contextvars
import gettext
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

DOMAIN = "karp"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT = "en"
LANGUAGES = {"en": "English", "zh": "简体中文"}      # code -> its name in itself
CATALOGS = {"zh": "zh_CN"}                            # code -> the catalog's folder (the source
                                                      # language, English, needs none)

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("karp_language", default=None)
_resolver: Callable[[], str | None] | None = None


def normalise(tag: str | None) -> str | None:
    """A language tag ('zh-CN', 'zh_Hans', 'en-US', 'zh_CN.UTF-8') -> 'zh' | 'en', or None when
    karp has no catalog for it. Every Chinese tag gets Simplified Chinese, the one catalog."""
    if not tag:
        return None
    base = tag.replace("-", "_").split(".")[0].split("@")[0].split("_")[0].lower()
    return base if base in LANGUAGES else None


@cache
def _environment_language() -> str:
    for var in ("KARP_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:                           # the first one set decides, as in gettext
            return next((lang for t in value.split(":") if (lang := normalise(t))), DEFAULT)
    return DEFAULT


def set_language_resolver(fn: Callable[[], str | None] | None) -> None:
    """Register the front end's `fn() -> language code or None` (None: it has no say here, e.g.
    outside a browser session); called on every translation, so keep it cheap."""
    global _resolver
    _resolver = fn


def language() -> str:
    """The language of this call: 'en' or 'zh' (see the module docstring for the order)."""
    lang = _override.get()
    if lang is None and _resolver is not None:
        lang = normalise(_resolver())
    return lang or _environment_language()


@contextmanager
def using(lang: str | None) -> Iterator[None]:
    """Translate in `lang` inside the block, in this thread (None or an unknown tag: no change)."""
    token = _override.set(normalise(lang) or _override.get())
    try:
        yield
    finally:
        _override.reset(token)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang` (English: the messages as written)."""
    if lang not in CATALOGS:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[CATALOGS[lang]], fallback=True)


def _(message: str) -> str:
    """`message` in the current language (itself when it has no translation)."""
    return translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the current language (Chinese has one form)."""
    return translations(language()).ngettext(singular, plural, n)


def join(items) -> str:
    """Items as the current language lists them: 'Bag, Coat, Dress' (Chinese: 包、外套、连衣裙)."""
    # TRANSLATORS: what goes between the items of a list ("Bag, Coat, Dress")
    return _(", ").join(str(i) for i in items)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it now (class names, table constants):
    translate it with _() where it is shown."""
    return message


def pgettext(context: str, message: str) -> str:
    """`message` in the current language, told apart from the same words elsewhere by
    `context` (the glossary's "head" is an attention head, not a classifier's)."""
    return translations(language()).pgettext(context, message)


def NC_(context: str, message: str) -> str:
    """Mark `message` with its `context` for the catalog (translate it with pgettext)."""
    return message


class L_(str):  # noqa: N801 - named like the other markers, as extraction knows it
    """A message fixed when a module is imported that translates itself whenever it is turned
    into text (str(), format(), an f-string), in the language of that moment. For the few
    places that keep a message from import time and show it later: a Streamlit cache's
    spinner (`show_spinner=L_("Loading the model…")`)."""

    __slots__ = ()

    def __str__(self) -> str:
        return _(str.__str__(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)
