"""Predict page speed on the CPU: preprocessing a 12-megapixel JPEG, one prediction, and all
feature maps of the shipped fast CNN (median of several runs, 1 torch thread as in the app)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models import preprocess as pp  # noqa: E402
from karp_models.introspect import features as feat  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from run import median_ms  # noqa: E402


def photo_jpeg(w: int = 4000, h: int = 3000) -> bytes:
    """A 12-megapixel JPEG with photo-like content (a scaled-up real photo plus noise)."""
    import cv2
    import skimage.data

    base = cv2.resize(np.asarray(skimage.data.astronaut()), (w, h), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).integers(-12, 12, base.shape, dtype=np.int16)
    img = np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def run(line) -> None:
    torch.set_num_threads(1)
    data = photo_jpeg()
    ms = median_ms(lambda: pp.preprocess_file(data, "12mp.jpg", "fashion"))
    line("predict_preprocess_12mp_jpeg", ms, "ms", f"goal < 300 ms; {len(data) / 2**20:.1f} MB file, decode + all steps")
    model = load_checkpoint(ROOT / "weights" / "fast-fashion-mnist.safetensors", "cpu").model
    x = torch.from_numpy(pp.preprocess_file(data, "12mp.jpg", "fashion")[1].x)[None]
    line("predict_prediction", median_ms(lambda: feat.predict(model, x), 25), "ms",
         "goal < 50 ms; fast-fashion-mnist, one image")
    line("predict_all_feature_maps", median_ms(lambda: feat.feature_maps(model, x), 25), "ms",
         f"goal < 100 ms; {len(model.feature_layers)} layers of fast-fashion-mnist, one forward")


if __name__ == "__main__":
    from run import line

    run(line)
