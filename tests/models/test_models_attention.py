"""GPT and ViT: shapes, untrained loss, overfitting, the causal mask, and the explicit attention path
against F.scaled_dot_product_attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from karp_models.models import build
from karp_models.models.attention import FUSED_HEAD_VOCAB, SelfAttention
from karp_models.models.transformer_ops import dropout, linear_cross_entropy

V = 13


def tiny_gpt(**kw):
    return build("gpt", preset="nano", vocab_size=V, block_size=16, **kw)


def tiny_vit(C: int, S: int, patch: int, n_classes: int = 7, **kw):
    return build("vit", preset="tiny", in_channels=C, image_size=S, patch_size=patch, n_classes=n_classes,
                 mean=(0.5,) * C, std=(0.25,) * C, **kw)


# ---------------------------------------------------------------------------- attention module


@pytest.mark.parametrize("causal", [True, False])
def test_explicit_attention_matches_fused_reference(causal):
    torch.manual_seed(0)
    att = SelfAttention(n_embd=24, n_head=3, dropout=0.0, bias=True, causal=causal).eval()
    x = torch.randn(2, 7, 24)
    fast, none = att(x)
    slow, w = att(x, return_weights=True)
    assert none is None and w.shape == (2, 3, 7, 7)
    torch.testing.assert_close(slow, fast, atol=1e-5, rtol=0)
    # reference: heads by hand from c_attn, through F.scaled_dot_product_attention
    q, k, v = att.c_attn(x).split(24, dim=2)
    q, k, v = (t.view(2, 7, 3, 8).transpose(1, 2) for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(w @ v, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 7))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_dropout_is_an_inverted_bernoulli_mask_like_torchs(p):
    torch.manual_seed(0)
    x = torch.randn(64, 257, requires_grad=True)
    y = dropout(x, p, training=True)
    kept = y != 0
    # every value is dropped or scaled by 1 / (1 - p), as F.dropout's
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    # the share dropped is p within 5 binomial standard deviations, as is torch's own
    n = x.numel()
    ref_dropped = (F.dropout(torch.ones(n), p, training=True) == 0).float().mean().item()
    for share in (1 - kept.float().mean().item(), ref_dropped):
        assert abs(share - p) < 5 * math.sqrt(p * (1 - p) / n)
    g = torch.randn_like(x)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * kept / (1 - p))      # d(x * mask) / dx = mask
    # the same mask is torch.rand >= p under the same seed; off in eval, all-zero at p = 1
    torch.manual_seed(1)
    y1 = dropout(x.detach(), p, training=True)
    torch.manual_seed(1)
    assert torch.equal(y1 != 0, torch.rand_like(x) >= p)
    assert dropout(x, p, training=False) is x and dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))


def test_attention_with_dropout_in_training_matches_a_hand_computation():
    """On the CPU, training-mode dropout runs the explicit path: softmax weights dropped, then the
    residual dropped, each mask rand >= p in that order."""
    p, B, T, C, nh = 0.3, 2, 5, 12, 3
    torch.manual_seed(0)
    att = SelfAttention(n_embd=C, n_head=nh, dropout=p, bias=True, causal=True).train()
    x = torch.randn(B, T, C)
    torch.manual_seed(7)
    out, w = att(x)
    assert w is None
    torch.manual_seed(7)
    q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in att.c_attn(x).split(C, dim=2))
    ref_w = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # no dropout: check the weights
    att_w = ((q @ k.transpose(-2, -1)) / math.sqrt(C // nh)).masked_fill(
        torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    torch.testing.assert_close(att_w @ v, ref_w, atol=1e-5, rtol=0)
    y = (att_w * (torch.rand_like(att_w) >= p) / (1 - p)) @ v
    y = att.c_proj(y.transpose(1, 2).reshape(B, T, C))
    ref = y * (torch.rand_like(y) >= p) / (1 - p)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- GPT


@pytest.mark.parametrize("rows", [7, 64, 1000])
def test_linear_cross_entropy_matches_torchs_loss_and_gradients(rows):
    torch.manual_seed(0)
    N, C, Vw = 100, 16, 301
    h = torch.randn(N, C, dtype=torch.float64, requires_grad=True)
    w = torch.randn(Vw, C, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, Vw, (N,))
    y[::9] = -1                                                      # ignored rows
    loss = linear_cross_entropy(h, w, y, rows=rows)
    loss.backward(torch.tensor(2.0, dtype=torch.float64))
    gh, gw = h.grad, w.grad
    h.grad = w.grad = None
    ref = F.cross_entropy(h @ w.t(), y, ignore_index=-1)
    (2 * ref).backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(gh, h.grad)
    torch.testing.assert_close(gw, w.grad)


def test_wide_vocabulary_gpt_trains_through_the_fused_head():
    torch.manual_seed(0)
    gpt = build("gpt", preset="nano", vocab_size=FUSED_HEAD_VOCAB + 5, block_size=16).train()
    x, y = torch.randint(0, FUSED_HEAD_VOCAB, (3, 16)), torch.randint(0, FUSED_HEAD_VOCAB, (3, 16))
    none, loss = gpt(x, y)
    assert none is None
    loss.backward()
    grads = [p.grad.clone() for p in gpt.parameters()]
    gpt.zero_grad()
    with torch.no_grad():
        logits, _ = gpt(x)                                           # the materialised path
    ref = F.cross_entropy(gpt(x)[0].reshape(-1, logits.size(-1)), y.reshape(-1))
    ref.backward()
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=0)
    for g, p in zip(grads, gpt.parameters()):
        torch.testing.assert_close(g, p.grad, atol=1e-6, rtol=1e-4)
    assert gpt.eval()(x, y)[0].shape == (3, 16, FUSED_HEAD_VOCAB + 5)  # evaluation keeps its logits



def test_gpt_shapes_loss_and_fused_vs_explicit():
    torch.manual_seed(0)
    m = tiny_gpt().eval()
    idx, tgt = torch.randint(0, V, (3, 16)), torch.randint(0, V, (3, 16))
    logits, loss = m(idx, tgt)
    assert logits.shape == (3, 16, V)
    assert abs(loss.item() - math.log(V)) < 0.3
    logits2, maps = m.forward_with_attention(idx)
    torch.testing.assert_close(logits2, logits, atol=1e-5, rtol=0)
    assert len(maps) == m.config.n_layer
    for w in maps:
        assert w.shape == (3, m.config.n_head, 16, 16)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, m.config.n_head, 16))
        assert (w.triu(1) == 0).all()                                   # nothing attends to the future
        assert (w.diagonal(dim1=-2, dim2=-1) > 0).all()


def test_gpt_future_tokens_do_not_change_past_logits():
    torch.manual_seed(0)
    m = tiny_gpt().eval()
    idx = torch.randint(0, V, (2, 12))
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % V
    for run in (lambda t: m(t)[0], lambda t: m.forward_with_attention(t)[0]):
        a, b = run(idx), run(changed)
        torch.testing.assert_close(a[:, :8], b[:, :8], atol=1e-6, rtol=0)
        assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_gpt_overfits_one_batch():
    torch.manual_seed(0)
    m = tiny_gpt()
    idx = torch.randint(0, V, (4, 17))
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = m(x, y)[1].item()
    for _ in range(80):
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m(x, y)[1].item() < 0.3 * first


def test_gpt_generate_crops_context_and_stays_in_vocab():
    torch.manual_seed(0)
    m = tiny_gpt().eval()
    prompt = torch.randint(0, V, (2, 20))                               # longer than block_size 16
    out = m.generate(prompt, 10, temperature=0.8, top_k=5)
    assert out.shape == (2, 30) and torch.equal(out[:, :20], prompt)
    assert out.min() >= 0 and out.max() < V
    greedy = m.generate(prompt, 1, temperature=0.0)
    assert torch.equal(greedy[:, -1], m(prompt[:, -16:])[0][:, -1].argmax(-1))
    with pytest.raises(ValueError):
        m(prompt)


def test_gpt_key_value_cache_gives_the_full_forward_logits():
    torch.manual_seed(0)
    m = tiny_gpt().eval()
    idx = torch.randint(0, V, (2, 16))
    full = m(idx)[0]                                                    # (2, 16, V)
    logits, cache = m.forward_cached(idx[:, :5])                        # a prime of 5, then one at a time
    torch.testing.assert_close(logits, full[:, 4], atol=1e-5, rtol=0)
    for t in range(5, 16):
        logits, cache = m.forward_cached(idx[:, t:t + 1], cache)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=0)
    assert cache[0][0].shape == (2, m.config.n_head, 16, m.config.n_embd // m.config.n_head)
    with pytest.raises(ValueError, match="block_size"):
        m.forward_cached(idx[:, :1], cache)                             # full: no 17th position
    with pytest.raises(ValueError, match="one position"):
        m.forward_cached(idx[:, :2], m.forward_cached(idx[:, :3])[1])


def test_gpt_tied_head_shares_the_embedding():
    m = tiny_gpt(tie_weights=True)
    assert m.lm_head.weight is m.transformer.wte.weight


# ---------------------------------------------------------------------------- ViT


@pytest.mark.parametrize("C,S,patch", [(1, 8, 4), (1, 28, 7), (1, 28, 4), (3, 32, 4)])
def test_vit_shapes_and_fused_vs_explicit(C, S, patch):
    torch.manual_seed(0)
    m = tiny_vit(C, S, patch).eval()
    x = torch.rand(2, C, S, S)
    logits, loss = m(x)
    assert logits.shape == (2, 7) and loss is None
    logits2, maps = m.forward_with_attention(x)
    torch.testing.assert_close(logits2, logits, atol=1e-5, rtol=0)
    P = (S // patch) ** 2
    assert m.grid == (S // patch, S // patch)
    for w in maps:
        assert w.shape == (2, m.config.n_head, 1 + P, 1 + P)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, m.config.n_head, 1 + P))
        assert (w.triu(1) > 0).any()                                    # not causal: patches see each other


def test_vit_untrained_loss_and_overfit():
    torch.manual_seed(0)
    m = tiny_vit(1, 8, 4, n_classes=10)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = m(x, y)[1].item()
    assert abs(first - math.log(10)) < 0.3
    for _ in range(100):
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m(x, y)[1].item() < 0.25 * first


def test_vit_rejects_sizes_the_patch_does_not_divide():
    with pytest.raises(ValueError):
        tiny_vit(1, 28, 8)
