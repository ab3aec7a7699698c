"""A lesson's grading (issue 24) against hand computations: a click's share of a Grad-CAM map, the model's
next character, the head whose knockout hurts closing quotes most."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from karp_models.introspect import ablation as ab
from karp_models.introspect import quiz

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def test_cell_masses_split_a_map_into_grid_shares():
    cam = np.zeros((28, 28))
    cam[0:4, 0:4] = 1.0                      # all in the top-left cell of a 7 x 7 grid
    cam[24:28, 24:28] = 3.0                  # three times as much in the bottom-right one
    m = quiz.cell_masses(cam)
    assert m.shape == (7, 7) and m.sum() == pytest.approx(1)
    assert m[0, 0] == pytest.approx(0.25) and m[6, 6] == pytest.approx(0.75)
    assert np.allclose(quiz.cell_masses(np.zeros((28, 28))), 1 / 49)   # nothing: even
    assert quiz.cell_masses(-np.ones((14, 14))).sum() == pytest.approx(1)
    with pytest.raises(ValueError):
        quiz.cell_masses(np.zeros((2, 28, 28)))


def test_grade_region_scores_a_click_by_its_overlap_with_the_map():
    cam = np.zeros((28, 28))
    cam[12:16, 12:16] = 1.0                  # one blob in the centre cell (3, 3)
    hit = quiz.grade_region(cam, 3, 3)
    assert hit.right and hit.score == 1 and hit.share == pytest.approx(1)
    near = quiz.grade_region(cam, 2, 4)      # its 3 x 3 cells still hold the centre
    assert near.right and near.share == pytest.approx(1)
    miss = quiz.grade_region(cam, 0, 0)
    assert not miss.right and miss.share == 0 and miss.score == 0
    # half the map in the centre, half in a corner: a click on either holds half
    cam[0:4, 0:4] = 1.0
    g = quiz.grade_region(cam, 6, 6)
    assert g.share == 0 and g.best == pytest.approx(0.5)
    assert quiz.grade_region(cam, 0, 0).score == pytest.approx(1)
    assert quiz.grade_region(cam, 1, 1).share == pytest.approx(0.5)   # (0, 0) is in (1, 1)'s region


def test_region_share_is_clipped_at_the_edges():
    m = np.full((7, 7), 1 / 49)
    assert quiz.region_share(m, 0, 0) == pytest.approx(4 / 49)
    assert quiz.region_share(m, 3, 3) == pytest.approx(9 / 49)
    assert quiz.region_share(m, 6, 3) == pytest.approx(6 / 49)


@pytest.fixture(scope="module")
def gpt():
    from karp_models.train.checkpoints import load_checkpoint
    path = WEIGHTS / "gpt-shakespeare.safetensors"
    ck = load_checkpoint(path)
    return ck.model.eval(), list(ck.meta["vocab"])


def test_next_char_is_graded_by_the_model_s_own_distribution(gpt):
    model, vocab = gpt
    text = "To be, or not to b"
    ids = [vocab.index(c) for c in text]
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor([ids]))[0][0, -1].float(), -1).numpy()   # by hand
    g = quiz.grade_next_char(model, ids, vocab, "e")
    assert g.right and g.top[0] == vocab[int(p.argmax())] == "e"
    assert g.guess_prob == pytest.approx(float(p[vocab.index("e")]), rel=1e-4)
    assert np.all(np.diff(g.probs) <= 0) and len(g.top) == 5
    wrong = quiz.grade_next_char(model, ids, vocab, "r")
    assert not wrong.right and wrong.guess_prob == pytest.approx(float(p[vocab.index("r")]), rel=1e-4)
    assert quiz.grade_next_char(model, ids, vocab, "€").guess_prob == 0


def test_head_ranking_puts_first_the_head_whose_knockout_hurts_quotes_most(gpt):
    model, vocab = gpt
    text = 'He said, "I will go." She said, "Then go now." And they answered, "We will stay."'
    ids = [vocab.index(c) for c in text]
    ranking = quiz.head_ranking(model, ids, text)
    L, H = model.config.n_layer, model.config.n_head
    assert len(ranking) == L * H and {(s.layer, s.index) for s, _ in ranking} == {(l, h) for l in range(L) for h in range(H)}
    effects = [e for _, e in ranking]
    assert effects == sorted(effects)
    # the first head, knocked out by hand: the mean log-probability of the closing quotes falls by its effect
    mask = ab.behaviour_mask("closing a quote", text)
    site = ranking[0][0]
    lp = ab.next_char_logprobs(model, ids, [None, site])                # (2, T - 1)
    hand = float((lp[1] - lp[0])[torch.from_numpy(mask)].mean())
    assert ranking[0][1] == pytest.approx(hand, abs=1e-5) and hand < 0
    with pytest.raises(ValueError):
        quiz.head_ranking(model, ids[:8], text[:8])                     # no quote closes there
