"""Text introspection: GPT attention on a text, next-character probabilities, streamed sampling."""
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from karp_models.introspect import text as tx
from karp_models.models.attention import GPT, GPT_PRESETS
from karp_models.models.rnn import PRESETS, CharRNN

VOCAB = tuple("\nabcdefgh .")


@pytest.fixture(scope="module")
def gpt() -> GPT:
    torch.manual_seed(0)
    m = GPT(replace(GPT_PRESETS["nano"], vocab_size=len(VOCAB), block_size=16)).eval()
    for p in m.parameters():                      # untrained weights are too uniform to test attention by
        p.data.add_(torch.randn_like(p) * 0.3)
    return m


@pytest.fixture(scope="module", params=["lstm", "gru"])
def rnn(request) -> CharRNN:
    torch.manual_seed(1)
    return CharRNN(replace(PRESETS["tiny"], cell=request.param, vocab_size=len(VOCAB))).eval()


def ids_of(n: int, seed: int = 0) -> list[int]:
    return torch.randint(len(VOCAB), (n,), generator=torch.Generator().manual_seed(seed)).tolist()


# ---------------------------------------------------------------------------- the reading policy

ZH = tuple("\n，。？！：；（）“”‘’·…、《》床前明月光疑是地上霜举头望低思故乡静夜")   # the corpus's marks, full width
LATIN = tuple("\n !\"',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def test_read_leaves_out_unknown_characters_listed_once_in_the_order_typed():
    r = tx.read(VOCAB, "xa!zxb!")
    assert r.text == "ab" and [VOCAB[i] for i in r.ids] == ["a", "b"]
    assert r.unknown == "x!z" and r.left_out == 5 and r.replaced == ()


def test_read_nfkc_full_width_and_ligatures():
    r = tx.read(LATIN, "Ｔｏ ｂｅ，ｏｒ ２ ﬁsh")                  # full-width letters, digit, comma; the fi ligature
    assert r.text == "To be,or 2 fish" and r.unknown == ""
    assert ("，", ",") in r.replaced and ("ﬁ", "fi") in r.replaced and ("Ｔ", "T") in r.replaced
    assert tx.read(LATIN, "“Don’t…”").text == "\"Don't...\""      # typographic marks as this vocabulary writes them


def test_read_folds_case_only_when_the_vocabulary_has_one_case():
    lower = tuple("\nabcdefghijklmnopqrstuvwxyz")
    assert tx.read(lower, "Anna ZOE").text == "annazoe" and tx.read(lower, "Anna").replaced == (("A", "a"),)
    assert tx.read(tuple("ABC"), "cab").text == "CAB"
    both = tuple("Aab")                                                # two cases: no folding
    r = tx.read(both, "Bba")
    assert r.text == "ba" and r.unknown == "B"
    assert tx.read(ZH, "Ab").unknown == "Ab"                           # no letters at all: nothing to fold to


def test_read_chinese_punctuation_as_data_chinese_normalise_zh_writes_the_corpus():
    from karp_models.data.chinese import normalise_zh

    for typed in ("床前明月光,疑是地上霜.", "床前明月光，疑是地上霜。", "举头望明月?低头思故乡!", "「静夜思」：『静』...",
                  "（静・夜）;思", "床前\r\n明月光", "故乡…"):
        r = tx.read(ZH, typed)
        assert r.unknown == "" and r.text == normalise_zh(typed), typed
    r = tx.read(ZH, "床前 明月光")                                      # spaces: not in the vocabulary, so left out
    assert r.text == "床前明月光" and r.unknown == " "


def test_read_keeps_the_vocabularys_own_characters_even_where_nfkc_would_change_them():
    assert tx.read(ZH, "…").text == "…" and tx.read(ZH, "…").replaced == ()   # NFKC would make it '...'
    assert tx.read(ZH, "...").replaced == (("...", "…"),)
    assert tx.read(LATIN, "。").text == "."                              # the other way round


def test_read_a_date_for_the_seq2seq_source_vocabulary():
    from karp_models.data import dates

    r = tx.read(dates.SRC_CHARS, "２０２６年１１月３０日　星期一")
    assert r.text == "2026年11月30日 星期一" and r.unknown == ""
    r = tx.read(dates.SRC_CHARS, "二零二六年十一月三十號, MAR")
    assert r.text == "二二六年十一月三十, mar" and r.unknown == "零號"


def test_read_empty_and_all_unknown_text():
    assert tx.read(VOCAB, "") == tx.Reading(ids=[], text="")
    r = tx.read(VOCAB, "ZZYX!YZ")
    assert r.ids == [] and r.text == "" and r.unknown == "ZYX!" and r.left_out == 7


def test_attention_rows_sum_to_one_and_nothing_above_the_diagonal(gpt):
    att = tx.attention(gpt, ids_of(16))
    L, H = gpt.config.n_layer, gpt.config.n_head
    assert att.shape == (L, H, 16, 16)
    np.testing.assert_allclose(att.sum(-1), np.ones((L, H, 16)), atol=1e-5)
    assert np.all(att[..., np.triu_indices(16, 1)[0], np.triu_indices(16, 1)[1]] == 0)   # causal: exactly 0
    assert att[0, 0, 0, 0] == pytest.approx(1.0)                                     # the first sees itself only


def test_attention_matches_scaled_dot_product_reference(gpt):
    """Layer 0's weights, recomputed from its own q, k with the textbook formula."""
    ids = ids_of(12, seed=3)
    att = tx.attention(gpt, ids)
    with torch.no_grad():
        idx = torch.tensor([ids])
        x = gpt.transformer.wte(idx) + gpt.transformer.wpe(torch.arange(12))
        blk = gpt.transformer.h[0]
        q, k, _ = blk.attn.c_attn(blk.ln_1(x)).split(gpt.config.n_embd, dim=2)
        H = gpt.config.n_head
        q, k = (t.view(1, 12, H, -1).transpose(1, 2) for t in (q, k))
        s = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
        ref = torch.softmax(s.masked_fill(torch.ones(12, 12, dtype=torch.bool).triu(1), float("-inf")), -1)
    np.testing.assert_allclose(att[0], ref[0].numpy(), atol=1e-5)


def test_attention_refuses_text_longer_than_the_context(gpt):
    with pytest.raises(ValueError, match="window"):
        tx.attention(gpt, ids_of(17))


def test_next_char_probs_rnn_read_the_whole_text(rnn):
    ids = ids_of(40)
    p = tx.next_char_probs(rnn, ids)
    with torch.no_grad():
        ref = F.softmax(rnn(torch.tensor([ids]))[0][0], -1).numpy()
    np.testing.assert_allclose(p, ref, atol=1e-6)


def test_next_char_probs_gpt_past_its_context_use_at_least_half_a_context(gpt):
    bs, T = gpt.config.block_size, 45
    ids = ids_of(T, seed=5)
    p = tx.next_char_probs(gpt, ids)
    assert p.shape == (T, len(VOCAB))
    np.testing.assert_allclose(p.sum(1), np.ones(T), atol=1e-5)
    with torch.no_grad():
        for t in range(T):
            need = min(t + 1, bs // 2)                # at least this much context, at most block_size
            ok = []
            for s in range(max(0, t - bs + 1), t + 2 - need):
                ref = F.softmax(gpt(torch.tensor([ids[s:t + 1]]))[0][0, -1], -1).numpy()
                ok.append(np.allclose(p[t], ref, atol=1e-5))
            assert any(ok), t


def test_topk_is_sorted_and_actual_is_the_real_next_character(rnn):
    ids = ids_of(20)
    nc = tx.next_char_topk(rnn, ids, VOCAB, k=5)
    p = tx.next_char_probs(rnn, ids)
    assert nc.top_probs.shape == (20, 5) and np.all(np.diff(nc.top_probs, axis=1) <= 0)
    assert nc.top_chars[0][0] == VOCAB[int(p[0].argmax())]
    np.testing.assert_allclose(nc.actual[:-1], p[np.arange(19), ids[1:]], atol=1e-7)
    assert np.isnan(nc.actual[-1]) and nc.text == "".join(VOCAB[i] for i in ids)


def test_gpt_generation_with_a_seed_is_reproducible_and_top_k_1_is_greedy(gpt):
    check_generation(gpt, gpt.config.block_size - 2)  # the last one is read from a full context


def test_rnn_generation_with_a_seed_is_reproducible_and_top_k_1_is_greedy(rnn):
    check_generation(rnn)


def check_generation(model, n: int = 30):
    """n characters match the model's own uncached generate (a GPT: while its cache is not full)."""
    prime = [0, 1, 2]
    a = "".join(tx.generate_stream(model, prime, VOCAB, n, temperature=1.0, top_k=None, seed=7))
    b = "".join(tx.generate_stream(model, prime, VOCAB, n, temperature=1.0, top_k=None, seed=7))
    c = "".join(tx.generate_stream(model, prime, VOCAB, n, temperature=1.0, top_k=None, seed=8))
    assert a == b and len(a) == n and a != c
    greedy = "".join(tx.generate_stream(model, prime, VOCAB, n, temperature=1.5, top_k=1, seed=1))
    ref = model.generate(torch.tensor([prime]), n, temperature=0.0)[0, 3:]           # argmax every step
    assert greedy == "".join(VOCAB[i] for i in ref)
    torch.manual_seed(7)                                                               # same draws as the model's own
    ref = model.generate(torch.tensor([prime]), n, temperature=1.0)[0, 3:]
    assert a == "".join(VOCAB[i] for i in ref)


def test_gpt_generation_past_its_context_restarts_from_three_quarters_of_it(gpt):
    """With the cache full, the next prediction reads the last 3/4 of block_size, then grows again:
    the cached stream equals full forwards over exactly those windows."""
    bs, keep, prime, n = gpt.config.block_size, gpt.config.block_size * 3 // 4, [0, 1, 2], 45
    got = [VOCAB.index(ch) for ch in tx.generate_stream(gpt, prime, VOCAB, n, temperature=0.0)]
    ids, length, want = list(prime), len(prime), []
    with torch.no_grad():
        for _ in range(n):
            logits, _ = gpt(torch.tensor([ids[-length:]]))
            want.append(int(logits[0, -1].argmax()))
            ids.append(want[-1])
            length = length + 1 if length < bs else keep
    assert got == want


def test_top_k_restricts_the_sample():
    logits = torch.tensor([[5.0, 4.0, 3.0, -1.0, -2.0]])
    g = torch.Generator().manual_seed(0)
    draws = {int(tx.sample(logits, 5.0, 2, g)) for _ in range(200)}
    assert draws == {0, 1}
    with pytest.raises(ValueError):
        next(tx.generate_stream(CharRNN(replace(PRESETS["tiny"], vocab_size=5)), [], "abcde", 3))
