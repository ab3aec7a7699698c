"""Seq2seq with additive attention: shapes, alignment rows sum to 1 and ignore padding, the greedy
path uses the same maths as teacher forcing, a tiny model overfits a handful of pairs, and the
live training loop keeps its budget and resumes."""
from dataclasses import replace

import pytest
import torch

from karp_models.data import dates
from karp_models.models.seq2seq import PRESETS, Seq2Seq
from karp_models.train.tasks.seq2seq import (LIVE, DateTranslation, build_model, exact_match, extend,
                                              live_trainer, translate)

PAIRS = [("3 March 2021", "2021-03-03"), ("mar 4, 21", "2021-03-04"), ("12/25/1999", "1999-12-25"),
         ("01.02.2003", "2003-02-01"), ("Friday, July 4th 1980", "1980-07-04"),
         ("20491231", "2049-12-31")]


@pytest.fixture
def tiny() -> Seq2Seq:
    return build_model("tiny", seed=0).eval()


def test_config_matches_the_vocabularies():
    c = PRESETS["dates"]
    assert (c.src_vocab, c.tgt_vocab) == (len(dates.SRC), len(dates.TGT))
    assert (c.pad, c.bos, c.eos) == (dates.TGT.pad, dates.TGT.bos, dates.TGT.eos)


def test_shapes_and_alignment_rows_sum_to_one_over_real_characters(tiny):
    src, tgt = dates.batch(PAIRS)                                    # (6, 21), (6, 11)
    logits, align = tiny.forward_with_attention(src, tgt)
    B, S = src.shape
    assert logits.shape == (B, tgt.size(1), len(dates.TGT))
    assert align.shape == (B, tgt.size(1), S)
    assert torch.allclose(align.sum(-1), torch.ones(B, tgt.size(1)), atol=1e-5)
    pad = (src == dates.SRC.pad).unsqueeze(1).expand_as(align)
    assert (align[pad] == 0).all() and (align >= 0).all()
    logits2, loss = tiny(src, tgt)
    assert torch.equal(logits, logits2) and loss.dim() == 0 and loss.item() > 0


def test_padding_does_not_change_a_sequence(tiny):
    src, tgt = dates.batch(PAIRS)
    alone_src, alone_tgt = dates.batch(PAIRS[:1])                    # no padding at all
    la, aa = tiny.forward_with_attention(alone_src, alone_tgt)
    lb, ab = tiny.forward_with_attention(src[:1], tgt[:1])
    S = alone_src.size(1)
    assert torch.allclose(la, lb, atol=1e-5)
    assert torch.allclose(aa, ab[..., :S], atol=1e-6)


def test_greedy_alignment_equals_teacher_forcing_on_its_own_output(tiny):
    src, _ = dates.batch(PAIRS[:1])
    tokens, align = tiny.greedy_decode(src, min_len=dates.TGT_LEN)
    assert tokens.shape[1] <= tiny.config.max_len and align.shape == (1, tokens.size(1), src.size(1))
    assert torch.allclose(align.sum(-1), torch.ones(1, tokens.size(1)), atol=1e-5)
    assert not ((tokens == dates.TGT.pad) | (tokens == dates.TGT.bos)).any()
    assert (tokens[0, :dates.TGT_LEN] != dates.TGT.eos).all()       # min_len holds
    with torch.no_grad():
        _, forced = tiny.forward_with_attention(src, tokens)
    assert torch.allclose(forced, align, atol=1e-6)


def test_tiny_model_overfits_a_handful_of_pairs():
    torch.manual_seed(0)
    model = build_model("tiny", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    src, tgt = dates.batch(PAIRS)
    for _ in range(60):
        _, loss = model(src, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert exact_match(model, PAIRS) == 1.0
    tr = translate(model, PAIRS[0][0])
    assert tr.output == PAIRS[0][1] and tr.alignment.shape == (11, len(PAIRS[0][0]))
    assert tr.out_chars[-1] == "</s>"


def test_live_run_keeps_its_budget_yields_records_and_resumes():
    """The page's run through the one Trainer: a budget, records with held-out exact match,
    more steps on request that hold the final learning rate, and a prompt stop."""
    tr = live_trainer(replace(LIVE, steps=20, batch_size=16, eval_every=10), preset="tiny", n_val=16)
    first = translate(tr.model, "Wednesday, March 3rd 2021")
    assert first.alignment.shape[0] >= dates.TGT_LEN                # untrained still writes 10 or more
    recs = list(tr.run(log_every=5))
    assert [r.step for r in recs] == [5, 10, 15, 20] and recs[-1].final
    assert recs[1].val_accuracy is not None and recs[0].val_accuracy is None
    assert recs[-1].val_accuracy is not None and recs[-1].val_loss > 0
    assert all(r.elapsed_s > 0 for r in recs)
    end_lr = LIVE.lr * LIVE.final_lr
    assert tr.cfg.lr * tr.lr_factor() == pytest.approx(end_lr)      # cosine down to a tenth
    assert end_lr < recs[-1].lr < recs[0].lr                        # (the last step's lr, just above)
    extend(tr, 5)
    more = list(tr.run(log_every=5))
    assert tr.step == 25 and more[-1].final
    assert more[-1].lr == pytest.approx(end_lr)                     # held, not restarted
    extend(tr, 100)
    stopped = list(tr.run(stop=_set_event()))
    assert tr.step == 25 and len(stopped) == 1 and stopped[0].final


def _set_event():
    import threading

    e = threading.Event()
    e.set()
    return e


def test_date_batches_are_fresh_reproducible_and_held_out_dates_stay_out():
    task = DateTranslation(n_val=32)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = task.batch("train", 8, g1), task.batch("train", 8, g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])      # the generator's state is the run's
    c = task.batch("train", 8, g1)
    assert not torch.equal(a[1], c[1])
    for t in a[1]:                                                  # decoded targets are training dates
        assert not dates.is_val(dates.dt.date.fromisoformat(dates.decode_target(t.tolist())))
    model = build_model("tiny", seed=0)
    m = task.evaluate(model, "cpu")
    assert set(m) == {"loss", "accuracy"} and m["accuracy"] == exact_match(model, task.val_pairs)
    assert task.preview(model, torch.device("cpu"), 7).step == 7
