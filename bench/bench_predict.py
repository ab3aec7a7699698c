"""Predict page speed on the CPU: preprocessing a 12-megapixel JPEG, one prediction, all feature
maps of the shipped fast CNN (median of several runs, 1 torch thread as in the app), and the
cost of the largest upload the page accepts (MAX_PIXELS, as a PNG under MAX_BYTES) with and
without an alpha channel, each decoded in a fresh process so its peak memory is its own.

    python bench/bench_predict.py
"""
from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tempfile
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


# --------------------------------------------------------------------------- the largest upload


def largest_pngs(folder: Path) -> dict[str, Path]:
    """The largest image the uploader accepts, as RGB and as RGBA PNGs (one picture, a cut-out
    with a soft edge in the RGBA one): a square of MAX_PIXELS pixels, a real photo scaled up so
    the file stays under MAX_BYTES."""
    import cv2
    import skimage.data

    side = int(np.sqrt(pp.MAX_PIXELS))                                # 8000 x 8000 = 64 MP
    rgb = cv2.resize(np.asarray(skimage.data.astronaut()), (side, side), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.ogrid[:side, :side]
    alpha = np.clip((0.45 * side - np.hypot(yy - side / 2, xx - side / 2)) / (0.02 * side), 0, 1)
    files = {}
    for kind, img in (("RGB", rgb), ("RGBA", np.dstack([rgb, (alpha * 255).astype(np.uint8)]))):
        ok, buf = cv2.imencode(".png", img[..., [2, 1, 0, 3][:img.shape[2]]],
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
        assert ok and len(buf) <= pp.MAX_BYTES, (kind, len(buf))
        files[kind] = folder / f"largest_{kind}.png"
        files[kind].write_bytes(buf.tobytes())
    return files


# Peak RSS from /proc/self/status VmHWM: ru_maxrss would count the parent's peak too (Linux
# keeps it across fork and exec).
_CHILD = """
import json, re, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from karp_models import preprocess as pp

def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

data = open(sys.argv[2], "rb").read()
pp.preprocess(np.zeros((8, 8, 3), np.uint8), "fashion")              # libraries loaded
base = hwm()
t0, c0 = time.perf_counter(), time.process_time()
d, p = pp.preprocess_file(data, "largest.png", "fashion")
t, c = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": t, "cpu": c, "peak": hwm(), "added": hwm() - base}))
"""


def upload_cost(path: Path, repeats: int = 3, root: Path = ROOT) -> dict:
    """decode + the Fashion-MNIST recipe of one file, each run in a fresh Python process: the
    median wall and CPU time, and the median peak RSS above the process's peak before the call
    (Python, the libraries and the file's bytes). Linux only (/proc)."""
    runs = [json.loads(subprocess.run([sys.executable, "-c", _CHILD, str(root), str(path)],
                                      check=True, capture_output=True, text=True).stdout)
            for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) for k in ("seconds", "cpu", "peak", "added")}


def largest_upload(line, root: Path = ROOT) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = largest_pngs(Path(tmp))
        mb = {k: p.stat().st_size / 2**20 for k, p in files.items()}
        cost = {k: upload_cost(p, root=root) for k, p in files.items()}
    rgb, rgba = cost["RGB"], cost["RGBA"]
    mp = pp.MAX_PIXELS / 1e6
    for kind, c in cost.items():
        line(f"predict_largest_{kind.lower()}_png_time", c["seconds"], "s",
             f"{mp:.0f} MP {kind} PNG, {mb[kind]:.0f} MB file: decode + recipe, median of 3 "
             f"processes; {c['cpu']:.2f} s CPU")
        line(f"predict_largest_{kind.lower()}_png_memory", c["added"] / 2**30, "GB",
             f"peak RSS above the process before the call; whole process {c['peak'] / 2**30:.2f} GB")
    line("predict_largest_rgba_vs_rgb_time", rgba["seconds"] / rgb["seconds"], "x",
         f"goal <= 1.5; CPU time {rgba['cpu'] / rgb['cpu']:.2f}x")
    line("predict_largest_rgba_vs_rgb_memory", rgba["added"] / rgb["added"], "x", "goal <= 1.5")


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
    largest_upload(line)


if __name__ == "__main__":
    from run import line

    run(line)
