"""Datasets as in-memory tensors with fixed splits, and where each comes from or how to get it.

    from karp_models.data import load, status, statuses, list_datasets, download, sample_photos
    load("fashion-mnist")   # ImageData: uint8 (N, 1, 28, 28), int64 labels, train/test
    load("shakespeare")     # TextData: char vocabulary, int64 ids, train/validation
    load("classical-zh")    # TextData: classical Chinese poems and sayings (Debian fortunes-zh)
    print(format_status_table(statuses()))

Image sources in images.py, text sources in text.py (English) and chinese.py, the on-disk cache ($KARP_CACHE or
~/.cache/karp) in cache.py, the name -> source registry in registry.py; a person's own classes (not in the
registry: `from karp_models.data import own`) in own.py.
"""
from karp_models.data.base import DatasetMissing, DatasetStatus, ImageData, TextData
from karp_models.data.cache import cache_dir
from karp_models.data.photos import sample_photos
from karp_models.data.registry import (
    DATASETS,
    UnknownDataset,
    download,
    format_status_table,
    list_datasets,
    load,
    status,
    statuses,
)

__all__ = [
    "DATASETS", "DatasetMissing", "DatasetStatus", "ImageData", "TextData", "UnknownDataset",
    "cache_dir", "download", "format_status_table", "list_datasets", "load", "sample_photos",
    "status", "statuses",
]
