"""RNN neuron introspection: traces against a step-by-step reference, signals, cell search, gate saturation."""
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn

from karp_models.introspect import neurons
from karp_models.models.rnn import PRESETS, CharRNN


def tiny(cell: str, n_layer: int = 2) -> CharRNN:
    torch.manual_seed(0)
    return CharRNN(replace(PRESETS["tiny"], cell=cell, vocab_size=11, n_layer=n_layer)).eval()


def copied_cell(model: CharRNN, layer: int) -> nn.Module:
    """nn.LSTMCell / nn.GRUCell holding layer `layer`'s weights of the model's nn.LSTM / nn.GRU."""
    c = model.config
    cls = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[c.cell]
    cell = cls(c.n_embd if layer == 0 else c.n_hidden, c.n_hidden)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(model.rnn, f"{name}_l{layer}").data)
    return cell


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_traces_equal_a_step_by_step_forward_with_the_cells_own_weights(cell):
    model = tiny(cell)
    ids = torch.randint(11, (25,), generator=torch.Generator().manual_seed(1)).tolist()
    st = neurons.traces(model, ids)
    T, L, H = 25, 2, model.config.n_hidden
    assert st["h"].shape == (T, L, H)
    with torch.no_grad():
        x = model.wte(torch.tensor(ids))                            # (T, n_embd)
        for layer in range(L):
            step = copied_cell(model, layer)
            h, c, hs = torch.zeros(1, H), torch.zeros(1, H), []
            for t in range(T):
                if cell == "lstm":
                    h, c = step(x[t:t + 1], (h, c))
                    np.testing.assert_allclose(st["c"][t, layer], c[0].numpy(), atol=1e-5)
                else:
                    h = step(x[t:t + 1], h)
                np.testing.assert_allclose(st["h"][t, layer], h[0].numpy(), atol=1e-5)
                hs.append(h[0])
            x = torch.stack(hs)                                     # next layer reads this layer's h
        _, h_n = model.rnn(model.wte(torch.tensor([ids])))          # the fused nn.LSTM / nn.GRU agrees too
        h_n = h_n[0] if cell == "lstm" else h_n
        np.testing.assert_allclose(st["h"][-1], h_n[:, 0].numpy(), atol=1e-5)


def test_lstm_gates_recompose_the_cell_and_hidden_state():
    st = neurons.traces(tiny("lstm", 1), list(range(11)) * 2)
    c_prev = np.vstack([np.zeros((1, 1, st["c"].shape[2])), st["c"][:-1]])
    np.testing.assert_allclose(st["c"], st["f"] * c_prev + st["i"] * st["g"], atol=1e-5)
    np.testing.assert_allclose(st["h"], st["o"] * np.tanh(st["c"]), atol=1e-5)
    for g in "ifo":
        assert st[g].min() >= 0 and st[g].max() <= 1


def test_signals_quotes_line_position_and_brackets():
    s = neurons.signals('a "bc" d\n(x[y])z')
    assert list(s) == ["position in line", "inside quotes", "bracket depth"]
    assert s["inside quotes"].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert s["position in line"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6]
    assert s["bracket depth"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 1, 0]


POEM = "《题》\n白日依山尽，黄河入海流。\n两个黄鹂鸣翠柳，一行白鹭上青天。\n"


def test_verse_signals_by_hand_on_a_small_poem():
    s = neurons.signals(POEM)
    assert list(s)[:3] == ["position in phrase", "seven-character phrase", "second phrase of the couplet"]
    title, five, seven = [0, 1, 2, 3], list(range(6)), list(range(8))   # a title line has no phrase mark
    assert s["position in phrase"].tolist() == title + five + five + [0] + seven + seven + [0]
    assert s["seven-character phrase"].tolist() == [0] * 4 + [-1] * 12 + [0] + [1] * 16 + [0]
    assert s["second phrase of the couplet"].tolist() == [0] * 4 + [0] * 6 + [1] * 6 + [0] + [0] * 8 + [1] * 8 + [0]
    assert s["position in line"][15] == 11 and s["bracket depth"][:4].tolist() == [1, 1, 1, 0]   # 《》 count
    assert "position in phrase" not in neurons.signals("no phrase marks here\n")
    assert neurons.signals("“曰，善”。")["inside quotes"].tolist() == [1, 1, 1, 1, 1, 0]


def test_cell_search_finds_planted_verse_cells():
    text = (POEM + "《又》\n千山鸟飞绝，万径人踪灭。\n") * 5
    sig = neurons.signals(text)
    rng = np.random.default_rng(1)
    T, H = len(text), 48
    state = rng.normal(size=(T, 1, H))
    state[:, 0, 11] = 0.3 * sig["position in phrase"] + 0.2 * rng.normal(size=T)   # a noisy phrase counter
    state[:, 0, 29] = -sig["second phrase of the couplet"]                          # a perfect couplet cell
    best = neurons.search_cells(state, sig["position in phrase"], top=3)
    ref = np.corrcoef(state[:, 0, 11], sig["position in phrase"])[0, 1]
    assert best[0].cell == 11 and best[0].score == pytest.approx(ref) and abs(best[1].score) < 0.3
    couplet = neurons.search_cells(state, sig["second phrase of the couplet"], top=1)[0]
    assert couplet.cell == 29 and couplet.score == pytest.approx(-1.0)


def test_cell_search_finds_a_planted_cell():
    text = ('He said "go now" and left.\nShe "stayed" here, (quiet [still]) and '
            'then "spoke" again.\n' * 6)
    sig = neurons.signals(text)
    rng = np.random.default_rng(0)
    T, H = len(text), 64
    state = rng.normal(size=(T, 2, H))
    state[:, 1, 37] = sig["inside quotes"]                            # a perfect quote cell in layer 1
    state[:, 0, 5] = -0.1 * sig["position in line"] + 0.01 * rng.normal(size=T)   # an upside-down line counter
    best = neurons.search_cells(state, sig["inside quotes"], top=5)
    assert (best[0].layer, best[0].cell) == (1, 37) and best[0].score == pytest.approx(1.0)
    assert abs(best[1].score) < 0.5
    line = neurons.search_cells(state, sig["position in line"])
    assert (line[0].layer, line[0].cell) == (0, 5) and line[0].score < -0.99
    assert np.all(neurons.correlations(np.ones((T, 3)), sig["inside quotes"]) == 0)   # constant: no score
    with pytest.raises(ValueError):
        neurons.search_cells(state[:10], sig["inside quotes"])


def test_gate_saturation_fractions():
    gate = np.array([0.05, 0.5, 0.95, 0.99])[:, None, None] * np.ones((4, 1, 3))    # (T, L, H)
    states = {g: gate for g in "ifo"}
    sats = neurons.gate_saturation(states, "lstm")
    assert [s.gate for s in sats] == ["i", "f", "o"] and sats[1].name == "forget gate"
    np.testing.assert_allclose(sats[0].left, np.full((1, 3), 0.25))
    np.testing.assert_allclose(sats[0].right, np.full((1, 3), 0.5))


def test_untrained_gru_end_to_end():
    model = tiny("gru", 1)
    text_ids = list(range(11)) * 4
    st = neurons.traces(model, text_ids)
    assert set(st) == {"h", "r", "z", "n"} and neurons.state_names("gru") == {"h": "hidden state h"}
    sats = neurons.gate_saturation(st, "gru")
    assert [s.gate for s in sats] == ["r", "z"]
    assert all(((s.left + s.right) <= 1).all() for s in sats)
    ranked = neurons.search_cells(st["h"], np.arange(len(text_ids)) % 7, top=3)
    assert len(ranked) == 3 and abs(ranked[0].score) >= abs(ranked[-1].score)
