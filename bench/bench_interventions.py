"""Interventions speed on the CPU (1 torch thread as in the app), shipped models: the knockout map of every
head of the shipped GPT on a 256-character text (issue 23's goal: under 10 s), with one forward pass over the
same text measured in the same run as the reference; the LSTM's map of all its cells; activation patching,
the logit lens and next-character IG. Also prints what the GPT's map shows."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from karp_models import data  # noqa: E402
from karp_models.introspect import ablation as ab  # noqa: E402
from karp_models.introspect import patching as pt  # noqa: E402
from karp_models.introspect import textattr as ta  # noqa: E402
from karp_models.train.checkpoints import load_checkpoint  # noqa: E402
from run import median_ms  # noqa: E402


def passage(n: int = 256) -> str:
    """256 characters of the validation text around its first double quote (a quote to close, lines to end)."""
    val = data.load("shakespeare")
    text = val.decode(val.val_ids[:200_000])
    at = text.find('"', 2000)
    return text[at - n // 2: at - n // 2 + n]


def run(line) -> None:
    torch.set_num_threads(1)
    gpt = load_checkpoint(ROOT / "weights" / "gpt-shakespeare.safetensors", "cpu").model
    lstm = load_checkpoint(ROOT / "weights" / "lstm-shakespeare.safetensors", "cpu").model
    vocab = data.load("shakespeare").vocab
    text = passage()
    ids = [vocab.index(c) for c in text]
    with torch.no_grad():
        fwd = median_ms(lambda: ab.next_char_logprobs(gpt, ids, [None]), 5)
    n_windows = len(ab.windows(len(ids) - 1, gpt.config.block_size - 1))
    line("interventions_gpt_forward_256", fwd, "ms",
         f"reference: one clean pass over the 256 characters ({n_windows} overlapping windows of {gpt.config.block_size})")
    for mode in ("zero", "mean"):
        t0 = time.perf_counter()
        k = ab.knockout_map(gpt, ids, ab.heads(gpt), ab.behaviour_mask("ending a line", text), mode=mode)
        ms = (time.perf_counter() - t0) * 1e3
        line(f"interventions_gpt_knockout_map_{mode}", ms, "ms",
             f"goal < 10 s; all {len(k.sites)} heads, 256 characters; {ms / fwd:.0f} forward passes' time")
    for behaviour in ("closing a quote", "ending a line", "every character"):
        k = ab.knockout_map(gpt, ids, ab.heads(gpt), ab.behaviour_mask(behaviour, text))
        worst = sorted(range(len(k.sites)), key=lambda i: k.effect[i])[:3]
        print(f"  {behaviour}: clean log p {k.clean:.3f}; most needed: " +
              ", ".join(f"L{k.sites[i].layer}H{k.sites[i].index} {k.effect[i]:+.3f}" for i in worst), flush=True)
    t0 = time.perf_counter()
    k = ab.knockout_map(lstm, ids[:128], ab.cells(lstm), ab.behaviour_mask("ending a line", text[:128]), batch=128)
    line("interventions_lstm_knockout_map_128", (time.perf_counter() - t0) * 1e3, "ms",
         f"all {len(k.sites)} cells inside the recurrence, 128 characters (the page's cap for an LSTM)")
    clean, corrupt = 'and they cry, "A sail!"', "and they cry, 'A sail!'"
    cid, xid = [vocab.index(c) for c in clean], [vocab.index(c) for c in corrupt]
    line("interventions_gpt_patching", median_ms(lambda: pt.activation_patching(
        gpt, cid[:-1], xid[:-1], vocab.index('"'), vocab.index("'")), 3), "ms",
         f"residual stream x {len(cid) - 1} positions and every head")
    line("interventions_gpt_logit_lens", median_ms(lambda: pt.logit_lens(gpt, ids[:128]), 5), "ms", "128 characters")
    line("interventions_gpt_ig", median_ms(lambda: ta.next_char_attribution(gpt, ids, 127, ids[128]), 3), "ms",
         "64 steps over a 128-character context")
    line("interventions_lstm_ig", median_ms(lambda: ta.next_char_attribution(lstm, ids, 254, ids[255], last=24), 3),
         "ms", "64 steps over the last 24 of 255 characters (the page's choice: longer does not converge)")


if __name__ == "__main__":
    from run import line
    run(line)
