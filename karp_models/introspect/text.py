"""Character language models on a text: what a model reads of a typed text (read: the one rule for characters
it does not know), attention per layer and head, next-character top-k, streamed sampling.

Works for the char GPT (attention.GPT) and the char RNN / LSTM / GRU (rnn.CharRNN). Pure functions over a
model and character ids; nothing here knows Streamlit.

Cites: Karpathy, "The Unreasonable Effectiveness of Recurrent Neural Networks" (2015: next-character
top-5 under every character, sampling with a temperature and a prime text), karpathy/nanoGPT
`generate` (top-k, context cropped to block_size), Vig 2019 BertViz (head and model views), Unicode Standard
Annex #15 (NFKC, compatibility normalisation).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- text <-> ids

# Marks that are the same punctuation written another way, tried in order when a vocabulary lacks the
# typed one (after NFKC, which already maps full-width ASCII forms): the Chinese full stop and the
# ASCII one, corner brackets as the mainland's curly quotes (data.chinese.normalise_zh's table),
# curly quotes as ASCII ones, the middle dots as one.
SAME_MARK: dict[str, tuple[str, ...]] = {
    ".": ("。",), "。": (".",), "「": ("“", '"'), "」": ("”", '"'), "『": ("‘", "'"), "』": ("’", "'"),
    "“": ('"',), "”": ('"',), "‘": ("'",), "’": ("'",), "・": ("·",), "‧": ("·",), "•": ("·",),
}


@dataclass(frozen=True)
class Reading:
    """What a character model reads of a typed text: the one policy every text page uses (issue 17, item 4).

    Attributes:
        ids: (T,) vocabulary ids of the characters read, in order.
        text: the characters read, ''.join(vocab[i] for i in ids): all a page may show as the model's input.
        unknown: the typed characters the model cannot read (left out), each once, in the order first typed.
        replaced: (typed, read as) pairs for characters read in the vocabulary's own form (NFKC, case,
            punctuation), each once, in the order first typed.
        left_out: how many typed characters were left out (unknown counts each occurrence).
    """
    ids: list[int]
    text: str
    unknown: str = ""
    replaced: tuple[tuple[str, str], ...] = ()
    left_out: int = 0


def _one_case(vocab: Sequence[str]) -> Callable[[str], str] | None:
    """str.lower for a vocabulary whose letters are all small, str.upper for all capitals, else None."""
    lower = any(ch.islower() for ch in vocab)
    upper = any(ch.isupper() for ch in vocab)
    return str.lower if lower and not upper else str.upper if upper and not lower else None


def read(vocab: Sequence[str], text: str) -> Reading:
    """The characters of `text` a model with this vocabulary reads, by one rule decided by what the
    vocabulary contains (no language flag):

    1. A character in the vocabulary is read as it is ('…' stays '…' though NFKC would make it '...').
    2. Line endings become '\\n'; a sequence the vocabulary writes as one character is read as it
       ('...' as '…' when the vocabulary has '…' and no '.').
    3. Any other character is NFKC-normalised (full-width Ａ１， to A1,, ligatures split), then each
       resulting character is read as itself, or in its case when the vocabulary's letters have one
       case only, or in the vocabulary's compatibility form (',' as '，' when the vocabulary has '，'
       and not ','), or as the same mark written another way (SAME_MARK: '.' as '。').
    4. A typed character that cannot be read so is left out and listed once, in the order typed.

    For the classical-zh vocabulary this reads Chinese text as data.chinese.normalise_zh writes the
    corpus (NFKC, then ，。？！：；（） in full width), except that spaces are left out as unknown.
    """
    stoi = {ch: i for i, ch in enumerate(vocab)}
    fold = _one_case(vocab)
    compat: dict[str, str] = {}                                       # NFKC form -> the vocabulary's form
    for v in vocab:
        n = unicodedata.normalize("NFKC", v)
        if n != v and not all(ch in stoi for ch in n):
            compat.setdefault(n, v)
    replaced: dict[str, str] = {}
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for seq, v in compat.items():
        if len(seq) > 1 and seq in text:
            text = text.replace(seq, v)
            replaced[seq] = v

    def as_vocab(ch: str) -> str | None:                                # one NFKC character
        for c in (ch, fold(ch) if fold else ch, compat.get(ch, ch), *SAME_MARK.get(ch, ())):
            if c and all(x in stoi for x in c):
                return c
        return None

    out: list[str] = []
    unknown: dict[str, None] = {}
    left_out = 0
    for ch in text:
        if ch in stoi:
            out.append(ch)
            continue
        parts = [as_vocab(c) for c in unicodedata.normalize("NFKC", ch)]
        if parts and all(p is not None for p in parts):
            out.append(form := "".join(parts))
            replaced.setdefault(ch, form)
        else:
            unknown.setdefault(ch)
            left_out += 1
    s = "".join(out)
    return Reading(ids=[stoi[c] for c in s], text=s, unknown="".join(unknown),
                   replaced=tuple(replaced.items()), left_out=left_out)


def is_gpt(model: nn.Module) -> bool:
    """True for the transformer (has forward_with_attention and a block_size it cannot go past)."""
    return hasattr(model, "forward_with_attention")


def _ids(ids: Sequence[int] | torch.Tensor, model: nn.Module) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.as_tensor(ids, dtype=torch.long, device=device).reshape(1, -1)   # (1, T)

# ---------------------------------------------------------------------------- attention


@torch.no_grad()
def attention(model: nn.Module, ids: Sequence[int] | torch.Tensor) -> np.ndarray:
    """Attention weights of a GPT on one text: (n_layer, n_head, T, T); row t is where character t looks.

    Causal: entries above the diagonal are 0 and each row sums to 1. T must be <= block_size (take a
    window of a longer text: the model never sees more than block_size characters at once).
    """
    idx = _ids(ids, model)
    if idx.size(1) > model.config.block_size:
        raise ValueError(f"{idx.size(1)} characters is more than this GPT's context of {model.config.block_size}; "
                         "pass a window of the text")
    _, maps = model.forward_with_attention(idx)                       # [(1, nh, T, T)] per layer
    return torch.stack([m[0] for m in maps]).float().cpu().numpy()    # (L, nh, T, T)

# ---------------------------------------------------------------------------- next character


@torch.no_grad()
def next_char_probs(model: nn.Module, ids: Sequence[int] | torch.Tensor) -> np.ndarray:
    """(T, V) probabilities of the character after each position, given everything before it.

    An RNN reads the whole text carrying its state. A GPT sees at most block_size characters: past
    that, overlapping windows (stride block_size / 2) give every position at least half a context.
    """
    idx = _ids(ids, model)
    T = idx.size(1)
    if not is_gpt(model):
        logits, _ = model(idx)                                        # (1, T, V)
        return F.softmax(logits[0].float(), dim=-1).cpu().numpy()
    bs = model.config.block_size
    if T <= bs:
        logits, _ = model(idx)
        return F.softmax(logits[0].float(), dim=-1).cpu().numpy()
    stride = bs // 2
    starts = list(range(0, T - bs + 1, stride))
    if starts[-1] != T - bs:
        starts.append(T - bs)
    windows = torch.stack([idx[0, s:s + bs] for s in starts])         # (W, bs)
    logits = torch.cat([model(w)[0] for w in windows.split(32)])      # (W, bs, V)
    probs = F.softmax(logits.float(), dim=-1)
    out = torch.empty(T, probs.size(-1), device=probs.device)
    out[:bs] = probs[0]
    done = bs
    for w, s in enumerate(starts[1:], start=1):                       # keep the positions not yet covered
        out[done:s + bs] = probs[w, done - s:]
        done = s + bs
    return out.cpu().numpy()


@dataclass(frozen=True)
class NextChar:
    """The model's top-k guesses for the character after each position of a text.

    Attributes:
        text: the characters read.
        top_chars: (T, k) the k most likely next characters at each position, most likely first.
        top_probs: (T, k) their probabilities.
        actual: (T,) probability given to the character that really comes next (nan at the last position).
    """
    text: str
    top_chars: list[list[str]]
    top_probs: np.ndarray
    actual: np.ndarray


def next_char_topk(model: nn.Module, ids: Sequence[int], vocab: Sequence[str], k: int = 5) -> NextChar:
    """Top-k next characters at every position (Karpathy's char-rnn post, five rows under the text)."""
    probs = next_char_probs(model, ids)                               # (T, V)
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]                           # (T, k)
    ids = list(ids)
    actual = np.full(len(ids), np.nan)
    if len(ids) > 1:
        actual[:-1] = probs[np.arange(len(ids) - 1), ids[1:]]
    return NextChar(text="".join(vocab[i] for i in ids),
                    top_chars=[[vocab[j] for j in row] for row in top],
                    top_probs=np.take_along_axis(probs, top, axis=1), actual=actual)

# ---------------------------------------------------------------------------- sampling


def sample(logits: torch.Tensor, temperature: float, top_k: int | None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """One id per row of (B, V) logits: greedy at temperature 0 or top_k 1, else softmax(logits / T) over the top k.

    Same rule as models.rnn.sample_next, with an explicit random generator so a seed reproduces a sample.
    """
    if temperature <= 0 or top_k == 1:
        return logits.argmax(dim=-1, keepdim=True)                    # (B, 1)
    logits = logits.float() / temperature
    if top_k:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)  # (B, 1)


@torch.no_grad()
def generate_stream(model: nn.Module, prime: Sequence[int], vocab: Sequence[str], max_new: int,
                    temperature: float = 1.0, top_k: int | None = None, seed: int | None = None
                    ) -> Iterator[str]:
    """Yield max_new sampled characters one at a time (for a page to show as they come).

    Args:
        prime: ids the model reads first (at least one; a newline is a good start).
        temperature: < 1 sharper and safer, > 1 wilder; 0 means always the most likely character.
        top_k: sample only among the k most likely characters (None or 0: all).
        seed: the same seed, model and settings give the same text.
    """
    if not len(prime):
        raise ValueError("generation needs a prime text of at least one known character")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    if seed is not None:
        gen.manual_seed(int(seed))
    else:
        gen.seed()
    idx = _ids(prime, model)                                          # (1, T)
    if is_gpt(model):
        # A key/value cache makes each character one position of work. Positions are absolute, so
        # when the cache is full, start again from the last 3/4 of a context: every character is
        # predicted from between 3/4 and all of block_size characters.
        bs = model.config.block_size
        keep = max(1, bs * 3 // 4)
        logits, cache = model.forward_cached(idx[:, -bs:])           # (1, V)
        for i in range(max_new):
            nxt = sample(logits, temperature, top_k, gen)             # (1, 1)
            idx = torch.cat([idx, nxt], dim=1)
            yield vocab[int(nxt)]
            if i + 1 == max_new:
                break
            if cache[0][0].size(2) < bs:
                logits, cache = model.forward_cached(nxt, cache)
            else:
                logits, cache = model.forward_cached(idx[:, -keep:])
    else:
        logits, hidden = model._run(idx)                              # read the prime once: (1, T, V)
        for _ in range(max_new):
            nxt = sample(logits[:, -1, :], temperature, top_k, gen)   # (1, 1)
            yield vocab[int(nxt)]
            logits, hidden = model._run(nxt, hidden)                  # one step, carrying the state
