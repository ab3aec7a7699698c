"""Cached loaders for pages: datasets and their status, shipped weights (Streamlit caching by role)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from karp_models import data
from karp_models.train.runs import WEIGHTS_DIR, format_metrics, load_dataset, shipped_weights


@st.cache_data(ttl=60, show_spinner=False)
def dataset_statuses() -> list[data.DatasetStatus]:
    return data.statuses()


@st.cache_resource(show_spinner="Loading dataset…", max_entries=24)
def dataset(name: str) -> data.ImageData | data.TextData:
    """One shared, read-only copy per process (tensors are never mutated by pages): karp's
    datasets, and a person's own classes kept beside the runs trained on them (the name of a
    kept set never changes its images: runs.save_dataset gives other images another name)."""
    return load_dataset(name)


@st.cache_data(show_spinner=False)
def sample_photos() -> dict:
    return data.sample_photos()


def status_frame(statuses: list[data.DatasetStatus]) -> pd.DataFrame:
    rows = []
    for s in statuses:
        sizes = " / ".join(f"{v:,} {k}" for k, v in (s.sizes or {}).items())
        if s.vocab_size:
            sizes += f" · {s.vocab_size} characters"
        rows.append({"dataset": s.name, "kind": s.kind,
                     "status": "available" if s.available else "missing",
                     "source": s.source, "splits": sizes,
                     "how to get it": s.how_to_get or "", "note": s.note or ""})
    return pd.DataFrame(rows)


@st.cache_data(ttl=30, show_spinner=False)
def weights_frame(weights_dir: str = str(WEIGHTS_DIR)) -> pd.DataFrame:
    rows = []
    for p, meta in shipped_weights(Path(weights_dir)):
        tr = meta.get("train", {})
        rows.append({"file": p.name, "model": meta.get("model"), "dataset": meta.get("dataset"),
                     "quality (measured)": format_metrics(meta.get("metrics", {})),
                     "parameters": f"{tr.get('params', 0):,}",
                     "training": f"{tr.get('time_s', 0) / 60:.1f} min, {tr.get('device', '?')}"})
    return pd.DataFrame(rows)
