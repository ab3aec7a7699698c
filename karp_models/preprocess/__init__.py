"""Turn an uploaded file, a photo or a drawing into a model's input the way its dataset was made,
returning every intermediate step (name + image) so a page can show the pipeline.

decode.py reads a file or an array into RGB, checked first (size before any pixel, truncation,
decompression bombs, 16-bit and float levels, EXIF orientation); recipes.py holds the steps of
each dataset's recipe (Fashion-MNIST, MNIST, ImageNet's eval transform, scenes). Callers use the
names below: `from karp_models import preprocess as pp; pp.preprocess_file(...)`.
"""
from karp_models.preprocess.decode import (MAX_BYTES, MAX_PIXELS, READABLE, SHOW_SIDE, STRIP_PIXELS,
                                           Decoded, ImageError, decode, from_array, levels,
                                           readable_formats)
from karp_models.preprocess.recipes import (BUSY_BORDER_STD, FLAT_RANGE, WORK_SIDE, Pipeline, Step,
                                            preprocess, preprocess_file, style_for)

__all__ = ["MAX_BYTES", "MAX_PIXELS", "READABLE", "SHOW_SIDE", "STRIP_PIXELS", "Decoded",
           "ImageError", "decode", "from_array", "levels", "readable_formats", "BUSY_BORDER_STD",
           "FLAT_RANGE", "WORK_SIDE", "Pipeline", "Step", "preprocess", "preprocess_file",
           "style_for"]
