"""Cached loaders for pages: datasets and their status, shipped weights (Streamlit caching by role)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from karp_models import data
from karp_models.device import localised
from karp_models.i18n import L_, NC_, _, language, pgettext
from karp_models.train.runs import WEIGHTS_DIR, format_metrics, load_dataset, shipped_weights


def dataset_statuses() -> list[data.DatasetStatus]:
    """Every dataset's status, its words in the session's language."""
    return _statuses(language())


@st.cache_data(ttl=60, show_spinner=False)
def _statuses(lang: str) -> list[data.DatasetStatus]:
    """`lang`: part of the cache key (sources and notes are said in words)."""
    return data.statuses()


@st.cache_resource(show_spinner=L_("Loading dataset…"), max_entries=24)
def dataset(name: str) -> data.ImageData | data.TextData:
    """One shared, read-only copy per process (tensors are never mutated by pages): karp's
    datasets, and a person's own classes kept beside the runs trained on them (the name of a
    kept set never changes its images: runs.save_dataset gives other images another name).
    Its class names are the catalog's msgids: show them with class_names()."""
    return load_dataset(name)


def class_names(classes) -> tuple[str, ...]:
    """Class names as the session's language writes them (digits stay digits)."""
    return tuple(_(c) for c in classes)


@st.cache_data(show_spinner=False)
def sample_photos() -> dict:
    """{name: RGB array}; the names are msgids: show them with _()."""
    return data.sample_photos()


SPLITS = (NC_("split", "train"), NC_("split", "test"), NC_("split", "validation"))   # for the catalog


def status_frame(statuses: list[data.DatasetStatus]) -> pd.DataFrame:
    """One row per dataset, headers and words in the session's language, indexed by name."""
    rows = []
    for s in statuses:
        sizes = " / ".join(_("{n:,} {split}").format(n=v, split=pgettext("split", k)) for k, v in (s.sizes or {}).items())
        if s.vocab_size:                                   # scenes' captions are read word by word
            sizes = (_("{sizes} · {n} words") if s.kind == "scenes" else _("{sizes} · {n} characters")).format(
                sizes=sizes, n=s.vocab_size)
        rows.append({_("dataset"): s.name, _("status"): _("available") if s.available else _("missing"),
                     _("splits"): sizes, _("source"): s.source})
    return pd.DataFrame(rows).set_index(_("dataset"))


def weights_frame(weights_dir: str = str(WEIGHTS_DIR)) -> pd.DataFrame:
    """The shipped weights, one row each, in the session's language."""
    return _weights_frame(weights_dir, language())


@st.cache_data(ttl=30, show_spinner=False)
def _weights_frame(weights_dir: str, lang: str) -> pd.DataFrame:
    rows = []
    for p, meta in shipped_weights(Path(weights_dir)):
        tr = meta.get("train", {})
        rows.append({_("file"): p.name, _("model"): meta.get("model"), _("dataset"): meta.get("dataset"),
                     _("quality (measured)"): format_metrics(meta.get("metrics", {})),
                     _("parameters"): f"{tr.get('params', 0):,}",
                     _("training"): _("{minutes:.1f} min, {device}").format(
                         minutes=tr.get("time_s", 0) / 60, device=localised(tr.get("device", "?")))})
    df = pd.DataFrame(rows)
    return df.set_index(_("file")) if len(df) else df
