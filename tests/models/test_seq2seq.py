"""Seq2seq with additive attention: shapes, alignment rows sum to 1 and ignore padding, the greedy
path uses the same maths as teacher forcing, a tiny model overfits a handful of pairs, and the
live training loop keeps its budget and resumes."""
import pytest
import torch

from karp_models.data import dates
from karp_models.models.seq2seq import PRESETS, Seq2Seq
from karp_models.seq2seq_train import LiveRun, TrainSettings, build_model, exact_match, translate

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
    run = LiveRun(TrainSettings(steps=20, batch_size=16, log_every=5, snapshot_every=10,
                                eval_every=10, n_val=16), preset="tiny")
    assert run.first.alignment.shape[0] >= dates.TGT_LEN            # untrained still writes 10 or more
    recs = list(run.train())
    assert [r.step for r in recs] == [5, 10, 15, 20, 20] and recs[-1].final
    assert recs[1].val_exact is not None and recs[1].snapshot is not None
    assert recs[-1].val_exact is not None and run.last_snapshot is recs[-1].snapshot
    assert all(r.elapsed_s > 0 for r in recs)
    more = list(run.train(5))
    assert run.step == 25 and more[-1].final
    stopped = list(run.train(100, stop=lambda: True))
    assert run.step == 25 and len(stopped) == 1
