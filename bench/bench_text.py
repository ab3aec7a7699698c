"""Text views speed on the CPU (1 torch thread as in the app), with the shipped models and the page caps:
GPT attention on a full 128-character window, next-character top-5 over 2,000 characters (GPT and LSTM),
LSTM cell traces over 2,000 characters, and generation speed (median of several runs)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models import data  # noqa: E402
from karp_models.introspect import neurons  # noqa: E402
from karp_models.introspect import text as tx  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from run import median_ms  # noqa: E402

MAX_CHARS = 2000  # karp_models.ui.text_views.MAX_CHARS, the pages' cap (not imported: that module needs streamlit)


def run(line) -> None:
    torch.set_num_threads(1)
    ds = data.load("shakespeare")
    ids = ds.val_ids[:MAX_CHARS].tolist()
    gpt = load_checkpoint(ROOT / "weights" / "gpt-shakespeare.safetensors", "cpu").model
    lstm = load_checkpoint(ROOT / "weights" / "lstm-shakespeare.safetensors", "cpu").model
    bs = gpt.config.block_size
    line("text_gpt_attention_window", median_ms(lambda: tx.attention(gpt, ids[:bs]), 5), "ms",
         f"goal < 200 ms; all layers and heads, {bs}-character window")
    line("text_gpt_next_char_top5", median_ms(lambda: tx.next_char_topk(gpt, ids, ds.vocab), 3), "ms",
         f"goal < 2 s; {len(ids):,} characters (the page's cap)")
    line("text_lstm_next_char_top5", median_ms(lambda: tx.next_char_topk(lstm, ids, ds.vocab), 3), "ms",
         f"goal < 2 s; {len(ids):,} characters")
    line("text_lstm_traces", median_ms(lambda: neurons.traces(lstm, ids), 3), "ms",
         f"goal < 3 s; every gate and state, {len(ids):,} steps, step-by-step path")
    for name, model in (("gpt", gpt), ("lstm", lstm)):
        n = 200
        t0 = time.perf_counter()
        for _ in tx.generate_stream(model, ids[:50], ds.vocab, n, temperature=0.8, seed=0):
            pass
        line(f"text_{name}_generate", n / (time.perf_counter() - t0), "chars/s", "goal > 20 chars/s (streamed)")


if __name__ == "__main__":
    from run import line

    run(line)
