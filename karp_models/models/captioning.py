"""Image captioning: a CNN reads the picture into a grid of feature vectors and an LSTM writes
the caption word by word, either from one vector for the whole image (no attention) or looking
at the grid again before every word (soft attention), whose weights are returned so a class can
watch them. Both share everything else, so they differ only in where each word's context comes from.

Cites: Xu et al. 2015, "Show, Attend and Tell" (soft attention
e_ti = w^T tanh(W_a a_i + W_h h_{t-1}), alpha = softmax(e), the gate beta = sigmoid(f_beta(h_{t-1})),
h_0 and c_0 from the image, the deep output layer of eq. 7); without attention the context is one
vector made from the whole grid (so it still knows where things are) and fed at every step, as
in Donahue et al. 2015 (LRCN) and Mao et al. 2015 (m-RNN): fed only once, as the first input
(Vinyals et al. 2015, "Show and Tell"), a CNN trained from scratch learnt nothing of the scene in
1,000 steps here. Departures: a learned position embedding is added to each grid cell, so an
attended vector also says where it is (the paper's 14x14 VGG features carry that in their wide
receptive fields; our small CNN's do not); the doubly stochastic penalty (eq. 14) is left out:
with 64 cells and about 8 words it cannot be met and only pulls attention flat. Beam search as
in Sutskever et al. 2014.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- config


@dataclass(frozen=True)
class CaptionConfig:
    vocab_size: int = 42           # data.CaptionData.vocab: <pad>, <s>, </s>, <unk>, then words
    image_size: int = 64
    in_channels: int = 1
    mean: tuple[float, ...] = (0.0934,)
    std: tuple[float, ...] = (0.2329,)
    channels: tuple[int, ...] = (16, 32, 64)   # each halves the side: 64 px -> an 8x8 grid
    n_embd: int = 64               # word embedding (and the deep output's width)
    n_hidden: int = 256            # LSTM state
    attention: bool = False        # True: Show, Attend and Tell; False: one image vector at every step
    attn_dim: int = 128
    dropout: float = 0.1
    max_len: int = 14              # words a caption may have, with </s>
    pad: int = 0
    bos: int = 1
    eos: int = 2


PRESETS: dict[str, CaptionConfig] = {
    "tiny": CaptionConfig(channels=(8, 16), n_embd=16, n_hidden=32, attn_dim=16),  # tests
    "scenes": CaptionConfig(),
}

# ---------------------------------------------------------------------------- encoder


class Encoder(nn.Module):
    """A stride-2 stem [conv3x3, BN, ReLU] to channels[0], then per later width a stage of
    [conv3x3 stride 2, BN, ReLU, conv3x3, BN, ReLU]: images (B, C, H, W) -> annotations (B, L, D),
    L = (H / 2^len(channels))^2 grid cells in row-major order, D = channels[-1]."""

    def __init__(self, c: CaptionConfig) -> None:
        super().__init__()

        def cbr(i: int, o: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        layers = cbr(c.in_channels, c.channels[0], 2)
        for prev, ch in zip(c.channels, c.channels[1:]):
            layers += cbr(prev, ch, 2) + cbr(ch, ch)
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(c.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net((x - self.mean) / self.std)                           # (B, D, g, g)
        return f.flatten(2).transpose(1, 2)                                # (B, L, D)

# ---------------------------------------------------------------------------- attention


class SoftAttention(nn.Module):
    """alpha_t = softmax_i(w^T tanh(W_a a_i + W_h h_{t-1})); z_t = sum_i alpha_ti a_i (Xu et al. eq. 4-6)."""

    def __init__(self, feat_dim: int, hidden: int, attn_dim: int) -> None:
        super().__init__()
        self.W_a = nn.Linear(feat_dim, attn_dim)
        self.W_h = nn.Linear(hidden, attn_dim, bias=False)
        self.w = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, a: torch.Tensor, Wa: torch.Tensor, h: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.w(torch.tanh(Wa + self.W_h(h).unsqueeze(1))).squeeze(-1)  # (B, L)
        alpha = F.softmax(e, dim=-1)                                       # (B, L), rows sum to 1
        z = torch.bmm(alpha.unsqueeze(1), a).squeeze(1)                    # (B, D)
        return z, alpha

# ---------------------------------------------------------------------------- model


class Captioner(nn.Module):
    """CNN encoder and LSTM decoder; with config.attention, soft attention over the encoder's grid.

    forward(images (B, C, H, W) float in [0, 1], captions (B, T) word ids ending in </s>, padded
    with 0) -> (logits (B, T, V), mean cross-entropy per word over non-padding, in nats); without
    captions, the greedy caption's logits and None.
    """

    def __init__(self, config: CaptionConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = Encoder(c)
        D, E, H = c.channels[-1], c.n_embd, c.n_hidden
        self.grid = c.image_size // 2 ** len(c.channels)
        L = self.grid ** 2
        self.embed = nn.Embedding(c.vocab_size, E, padding_idx=c.pad)
        self.drop = nn.Dropout(c.dropout)
        if c.attention:
            self.pos = nn.Parameter(torch.zeros(1, L, D))                  # where each cell is
            self.attend = SoftAttention(D, H, c.attn_dim)
            self.f_beta = nn.Linear(H, 1)
        else:
            self.image_in = nn.Linear(L * D, D)                            # one vector: what is where
        self.init_h, self.init_c = nn.Linear(D, H), nn.Linear(D, H)
        self.lstm = nn.LSTMCell(E + D, H)
        self.L_h, self.L_z = nn.Linear(H, E), nn.Linear(D, E, bias=False)
        self.L_o = nn.Linear(E, c.vocab_size)

    # -- one step of the decoder, shared by teacher forcing, greedy and beam search

    def start(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The decoder's state before <s>: (h, c, the image vector) or, with attention,
        (h, c, the annotations, W_a a); h and c from the image (Xu et al.'s initialisation)."""
        a = self.encoder(images)                                           # (B, L, D)
        if self.config.attention:
            a = a + self.pos
            ctx: tuple[torch.Tensor, ...] = (a, self.attend.W_a(a))
            summary = a.mean(1)                                            # (B, D)
        else:
            summary = self.drop(self.image_in(a.flatten(1)))               # (B, D)
            ctx = (summary,)
        return torch.tanh(self.init_h(summary)), torch.tanh(self.init_c(summary)), *ctx

    def step(self, y_prev: torch.Tensor, state: tuple[torch.Tensor, ...]
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor | None]:
        """logits (B, V) for the next word after y_prev (B,), the new state, and alpha (B, L) or None."""
        emb = self.drop(self.embed(y_prev))                                # (B, E)
        h, c, *ctx = state
        if self.config.attention:
            z, alpha = self.attend(ctx[0], ctx[1], h)                      # (B, D), (B, L)
            z = torch.sigmoid(self.f_beta(h)) * z                          # gated context
        else:
            z, alpha = ctx[0], None                                        # the same vector every step
        h, c = self.lstm(torch.cat([emb, z], -1), (h, c))                  # (B, H)
        logits = self.L_o(self.drop(emb + self.L_h(h) + self.L_z(z)))      # deep output, (B, V)
        return logits, (h, c, *ctx), alpha

    @staticmethod
    def select(state: tuple[torch.Tensor, ...], idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The state of rows idx (beam search's reordering)."""
        return tuple(t[idx] for t in state)

    def forward_with_attention(self, images: torch.Tensor, captions: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing: logits (B, T, V) and alphas (B, T, L) (None without attention)."""
        state = self.start(images)
        y_prev = torch.cat([captions.new_full((captions.size(0), 1), self.config.bos),
                            captions[:, :-1]], 1)                          # (B, T)
        logits, alphas = [], []
        for t in range(captions.size(1)):
            lg, state, alpha = self.step(y_prev[:, t], state)
            logits.append(lg)
            alphas.append(alpha)
        return torch.stack(logits, 1), (torch.stack(alphas, 1) if self.config.attention else None)

    def forward(self, images: torch.Tensor, captions: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if captions is None:
            return self.greedy(images).logits, None
        logits, _ = self.forward_with_attention(images, captions)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), captions.reshape(-1),
                               ignore_index=self.config.pad)
        return logits, loss

    # -- decoding

    def _banned(self, device: torch.device) -> torch.Tensor:
        never = torch.zeros(self.config.vocab_size, dtype=torch.bool, device=device)
        never[[self.config.pad, self.config.bos]] = True                   # markers, not words
        return never

    @torch.no_grad()
    def greedy(self, images: torch.Tensor, max_len: int | None = None) -> Decoded:
        """The most likely word at every step, for a batch: tokens (B, T) (</s>, then padding)."""
        never = self._banned(images.device)
        state = self.start(images)
        B = images.size(0)
        y = torch.full((B,), self.config.bos, dtype=torch.long, device=images.device)
        done = torch.zeros(B, dtype=torch.bool, device=images.device)
        tokens, probs, alphas, logits = [], [], [], []
        for _ in range(max_len or self.config.max_len):
            lg, state, alpha = self.step(y, state)
            lg = lg.masked_fill(never, float("-inf"))
            p = F.softmax(lg.float(), -1)                                  # (B, V)
            y = lg.argmax(-1).masked_fill(done, self.config.pad)           # finished rows: padding
            tokens.append(y)
            probs.append(p.gather(1, y[:, None]).squeeze(1).masked_fill(done, 0.0))
            alphas.append(alpha)
            logits.append(lg)
            done |= y == self.config.eos
            if bool(done.all()):
                break
        return Decoded(torch.stack(tokens, 1), torch.stack(probs, 1),
                       torch.stack(alphas, 1) if self.config.attention else None, torch.stack(logits, 1))

    @torch.no_grad()
    def beam_search(self, image: torch.Tensor, width: int = 3, max_len: int | None = None) -> Decoded:
        """The caption of highest total log-probability found by a beam of `width`, for one image
        (1, C, H, W). Each step keeps the `width` best extensions of the live hypotheses; one that
        ends in </s> is finished and the beam narrows by one (as in the Show, Attend and Tell
        tutorial code), so width 1 is exactly greedy decoding. The search ends when nothing is
        live, when no live hypothesis can still beat the best finished one (log-probabilities
        only fall as words are added), or at max_len words. Returns tokens (1, T) with its </s>
        (unless cut at max_len), each word's probability (1, T) and alphas (1, T, L) or None."""
        if image.size(0) != 1 or width < 1:
            raise ValueError("beam_search takes one image (1, C, H, W) and a width >= 1")
        never = self._banned(image.device)
        state = self.start(image)
        V = self.config.vocab_size
        live = [((), 0.0, (), ())]                    # (tokens, log-prob, word probs, alphas) per beam
        y = torch.tensor([self.config.bos], device=image.device)
        finished: list = []
        for _ in range(max_len or self.config.max_len):
            lg, state, alpha = self.step(y, state)                         # (k, V)
            logp = F.log_softmax(lg.float().masked_fill(never, float("-inf")), -1)  # (k, V)
            total = torch.tensor([h[1] for h in live], device=image.device)[:, None] + logp
            top = total.flatten().topk(min(width - len(finished), total.numel()))
            keep, rows = [], []
            for score, flat in zip(top.values.tolist(), top.indices.tolist()):
                b, w = divmod(flat, V)
                toks, _, ps, als = live[b]
                hyp = ((*toks, w), score, (*ps, float(logp[b, w].exp())),
                       (*als, alpha[b]) if alpha is not None else ())
                (finished if w == self.config.eos else keep).append(hyp)
                rows += [b] if w != self.config.eos else []
            best_done = max((h[1] for h in finished), default=float("-inf"))
            alive = [i for i, h in enumerate(keep) if h[1] > best_done]
            if not alive or len(finished) >= width:
                live = [keep[i] for i in alive]
                break
            live = [keep[i] for i in alive]
            state = self.select(state, torch.tensor([rows[i] for i in alive], device=image.device))
            y = torch.tensor([h[0][-1] for h in live], device=image.device)
        toks, _, ps, als = max(finished + live, key=lambda h: h[1])
        dev = image.device
        return Decoded(torch.tensor([toks], device=dev), torch.tensor([ps], device=dev),
                       torch.stack(als)[None] if als else None, None)


@dataclass(frozen=True)
class Decoded:
    """A decoded caption batch: tokens (B, T) ending in </s> then padding 0, each word's
    probability (B, T) (0 on padding), attention (B, T, L) or None, greedy's logits (B, T, V)."""

    tokens: torch.Tensor
    probs: torch.Tensor
    alphas: torch.Tensor | None
    logits: torch.Tensor | None
