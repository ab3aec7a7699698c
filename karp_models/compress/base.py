"""What the compression modules share: the kinds of pruning, the names shown for every kind of
point, the explanation methods compared."""
from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from karp_models.i18n import N_

KINDS = ("unstructured", "structured")
KIND_NAMES = {"unstructured": N_("unstructured"), "structured": N_("channels"),
              "original": N_("original model"), "int8-dynamic": N_("int8 dynamic (Linear)"),
              "int8-static": N_("int8 static (conv + Linear)")}            # shown with _()
EXPLAIN_METHODS = ("Grad-CAM", "Integrated Gradients")
PRUNABLE = (nn.Conv2d, nn.Linear)

Progress = Callable[[int, int, str], None]   # (done, total, what is running now)
