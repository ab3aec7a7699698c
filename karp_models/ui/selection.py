"""The image a person is looking at, shared by Predict, Explain and Evaluate in the session.

Predict sets it (upload, drawing, camera, test image); Evaluate's gallery sets it and switches
to Explain; Explain reads it. Stored under `st.session_state["karp_image"]`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from karp_models.i18n import _

KEY = "karp_image"


@dataclass(frozen=True)
class ImageInput:
    x: torch.Tensor               # (1, C, H, W) float32 in [0, 1], the model's input size
    dataset: str                  # the dataset whose format x follows
    source: str                   # in words: "test image #123", "upload: shoe.jpg", "drawing"
    label: int | None = None      # the true class when known
    original: np.ndarray | None = None  # the photo or drawing before preprocessing (H, W[, 3]) uint8

    @classmethod
    def from_array(cls, x: np.ndarray, **kw) -> "ImageInput":
        """From a preprocessed input (C, H, W) float32 in [0, 1]; kw: the other fields."""
        return cls(x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None], **kw)


def test_image(ds, index: int) -> ImageInput:
    """Test image `index` of an ImageData as an ImageInput."""
    index = int(index) % len(ds.test_y)
    x = ds.test_x[index:index + 1].float() / 255
    return ImageInput(x=x, dataset=ds.name, source=_("test image #{index}").format(index=index),
                      label=int(ds.test_y[index]))


BLANK = "karp_image_blank"  # the source of the last image Predict refused as blank


def set_image(inp: ImageInput) -> None:
    st.session_state[KEY] = inp
    st.session_state.pop(BLANK, None)


def set_blank(source: str) -> None:
    """The person's latest image was blank after preprocessing: nothing to pass on; other pages
    say so instead of showing the image before it."""
    st.session_state.pop(KEY, None)
    st.session_state[BLANK] = source


def blank_source() -> str | None:
    """The source of the latest image if Predict found it blank, else None."""
    return st.session_state.get(BLANK)


def get_image(dataset: str | None = None) -> ImageInput | None:
    """The current image, or None when there is none (or it follows another dataset's format)."""
    inp = st.session_state.get(KEY)
    if inp is None or (dataset is not None and inp.dataset != dataset):
        return None
    return inp
