"""The classical-Chinese GPT's training speed against the English one (issue 25, goal 6: "trains at
the same tokens/s as the English one despite its 5,000-character vocabulary, or say why not").

Both models as shipped (weights/gpt-shakespeare: vocab 83, 4 x 192, context 128, no dropout;
weights/gpt-classical-zh: vocab 5,688, 4 x 128, context 64, dropout 0.3), freshly initialised and
trained through karp's Trainer at batch 32, interleaved in this process (one step of each in turn,
median step). Two more variants split the difference into its causes: the Chinese vocabulary on
the English body (the head's cost alone) and the Chinese model without dropout (dropout's cost).
The reference is the Chinese model as karp trained it before issue 25: torch's F.dropout and the
(B T, V) logits materialised for F.cross_entropy, against karp's `dropout` (mask from rand >= p)
and `linear_cross_entropy` (the head and loss a cache-sized chunk of rows at a time).

    python bench/bench_gpt_zh.py      # ~1 min on a quiet 2-core machine
"""
from __future__ import annotations

import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from karp_models import data  # noqa: E402
from karp_models.models import attention  # noqa: E402
from karp_models.models.attention import GPT, Dropout, GPTConfig  # noqa: E402
from karp_models.train.tasks import make_task  # noqa: E402
from karp_models.train.trainer import TrainConfig, Trainer  # noqa: E402
from run import step_flops  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
BATCH = 32
FUSED = attention.FUSED_HEAD_VOCAB


def shipped_config(name: str) -> dict:
    with safe_open(str(WEIGHTS / f"{name}.safetensors"), "pt") as f:
        return json.loads(f.metadata()["config"])


def setup(dataset: str, config: dict, before: bool = False) -> tuple[Trainer, object, int]:
    ds = data.load(dataset)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**config, "vocab_size": len(ds.vocab)}))
    if before:  # the reference: torch's F.dropout (bernoulli_ on the CPU) in every layer
        for m in model.modules():
            if isinstance(m, Dropout):
                m.forward = types.MethodType(torch.nn.Dropout.forward, m)
    task = make_task(ds, model, block_size=config["block_size"])
    cfg = TrainConfig(steps=10**6, batch_size=BATCH, eval_every=0, eval_batches=1)
    return Trainer(model, task, cfg, torch.device("cpu")), task, task.items_per_batch(BATCH)


def run(line) -> None:
    en, zh = shipped_config("gpt-shakespeare"), shipped_config("gpt-classical-zh")
    variants = {
        "en": ("shakespeare", en, False),
        "zh": ("classical-zh", zh, False),
        "zh, English body": ("classical-zh", {**en}, False),
        "zh, no dropout": ("classical-zh", {**zh, "dropout": 0.0}, False),
        "zh, before": ("classical-zh", zh, True),
    }
    its, tokens, flops = {}, {}, {}
    for k, (dataset, config, ref) in variants.items():
        tr, task, tokens[k] = setup(dataset, config, ref)
        x, y = task.batch("train", BATCH, torch.Generator().manual_seed(0), "cpu")
        flops[k] = step_flops(tr.model, x, y)
        its[k] = tr.run(log_every=1)  # one record (one step) per next()
        for _ in range(3):
            attention.FUSED_HEAD_VOCAB = 10**9 if k == "zh, before" else FUSED
            next(its[k])
    times: dict[str, list[float]] = {k: [] for k in its}
    for _ in range(15):
        for k, it in its.items():
            # the reference materialises the logits: no vocabulary is wide enough to fuse
            attention.FUSED_HEAD_VOCAB = 10**9 if k == "zh, before" else FUSED
            t0 = time.perf_counter()
            next(it)
            times[k].append(time.perf_counter() - t0)
    attention.FUSED_HEAD_VOCAB = FUSED
    rate = {k: tokens[k] / statistics.median(v) for k, v in times.items()}

    vocab = {k: len(data.load(v[0]).vocab) for k, v in variants.items()}
    # lm_head forward + backward (3 matmuls of 2 C V FLOPs per token) over the step's FLOPs
    head = {k: 3 * 2 * v[1]["n_embd"] * vocab[k] / (flops[k] / tokens[k]) for k, v in variants.items()}

    line("gpt_zh_tokens_per_s", rate["zh"], "tokens/s",
         f"goal: the English GPT's rate; English {rate['en']:,.0f} tokens/s in the same run; "
         f"ratio {rate['zh'] / rate['en']:.2f}; both as shipped, batch 32, interleaved")
    line("gpt_zh_vs_en_flops", flops["zh"] / tokens["zh"] / (flops["en"] / tokens["en"]), "x FLOPs/token",
         f"zh {flops['zh'] / tokens['zh'] / 1e6:.1f} MFLOP/token (head {head['zh']:.0%}), "
         f"en {flops['en'] / tokens['en'] / 1e6:.1f} (head {head['en']:.0%}); "
         f"zh reaches {flops['zh'] / tokens['zh'] * rate['zh'] / 1e9:,.1f} GFLOP/s, "
         f"en {flops['en'] / tokens['en'] * rate['en'] / 1e9:,.1f}")
    line("gpt_zh_vocab_cost", rate["zh, English body"] / rate["en"], "x English tokens/s",
         f"the 5,688-way head on the English body (4 x 192, context 128): its "
         f"{rate['zh, English body']:,.0f} tokens/s against English's {rate['en']:,.0f}")
    line("gpt_zh_dropout_cost", rate["zh"] / rate["zh, no dropout"], "x tokens/s without dropout",
         f"the shipped recipe's dropout 0.3: {rate['zh, no dropout']:,.0f} tokens/s without it, "
         f"{rate['zh, no dropout'] / rate['en']:.2f}x the English rate")
    line("gpt_zh_speedup", rate["zh"] / rate["zh, before"], "x before issue 25",
         f"karp's dropout and fused head+loss against torch's F.dropout and materialised logits: "
         f"{rate['zh']:,.0f} vs {rate['zh, before']:,.0f} tokens/s; before, "
         f"{rate['zh, before'] / rate['en']:.2f}x the English rate")

if __name__ == "__main__":
    from run import line

    from karp_models import device as dev

    dev.set_threads()
    run(line)
