"""A failed run in words: out of memory, a full disk, or the error itself, for the page and the CLI."""
from __future__ import annotations

import gc
import traceback

import torch

from karp_models.i18n import _

_OOM_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory",
              "defaultcpuallocator", "not enough memory")


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA's torch.OutOfMemoryError, Python's MemoryError, or the CPU allocator's RuntimeError."""
    oom = getattr(torch, "OutOfMemoryError", None)
    if isinstance(e, MemoryError) or (oom is not None and isinstance(e, oom)):
        return True
    return isinstance(e, RuntimeError) and any(w in str(e).lower() for w in _OOM_WORDS)


def explain_error(e: BaseException, batch_size: int | None = None) -> str:
    """One clear line for the page: what failed and what to do; the traceback goes to details."""
    full = "".join(traceback.format_exception_only(type(e), e)).strip() or type(e).__name__
    raw = full.splitlines()[0]
    if is_out_of_memory(e):
        gpu = "cuda" in str(e).lower() or type(e).__name__ == "OutOfMemoryError"
        if batch_size is None:
            text = (_("Out of memory on the GPU: try a smaller batch size or a smaller preset. The "
                      "app, other runs and saved files are unaffected. ({error})") if gpu else
                    _("Out of memory on this machine: try a smaller batch size or a smaller preset. "
                      "The app, other runs and saved files are unaffected. ({error})"))
        else:
            text = (_("Out of memory on the GPU with batch size {batch:,}: try a smaller batch size "
                      "or a smaller preset. The app, other runs and saved files are unaffected. "
                      "({error})") if gpu else
                    _("Out of memory on this machine with batch size {batch:,}: try a smaller batch "
                      "size or a smaller preset. The app, other runs and saved files are "
                      "unaffected. ({error})"))
        return text.format(batch=batch_size, error=raw[:200])
    if isinstance(e, OSError) and getattr(e, "errno", None) in (28, 122):  # ENOSPC, EDQUOT
        return _("The disk is full: free some space and start again. ({error})").format(error=raw[:200])
    return full


def release_memory() -> None:
    """Collect garbage and hand CUDA's cached blocks back after a failed or removed run."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
