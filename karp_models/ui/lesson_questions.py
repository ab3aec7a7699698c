"""The lesson player's questions: how each kind is asked (a choice, a character, a click on the picture, a
head, yes or no) and how the live model answers it (Grad-CAM through Explain's cache, the shipped character
models, a knockout of every head, a short real run, a fresh network's first loss). ui/lessons.py shows them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from karp_models import lessons as ls
from karp_models.i18n import N_, _
from karp_models.introspect import quiz
from karp_models.train import recipe
from karp_models.train.runs import WEIGHTS_DIR
from karp_models.ui import cache, style
from karp_models.ui.figures import lessons as figs


def _check(key: str) -> bool:
    return st.button(_("Check my answer"), key=f"{key}_check", type="primary", icon=":material/fact_check:")

# ---------------------------------------------------------------------------- asking


def _ask_choice(q: ls.Question, key: str) -> str | None:
    options = [str(o) for o in q.params["options"]]
    pick = st.radio(_("Your answer"), options, index=None, key=f"{key}_pick", label_visibility="collapsed")
    return _submitted(key, pick, _("Choose an answer first."))


def _submitted(key: str, answer: str | None, missing: str) -> str | None:
    """The answer when Check was pressed with one given; a warning `missing` when without."""
    if not _check(key):
        return None
    if not answer:
        st.warning(missing)
        return None
    return answer


def _ask_char(q: ls.Question, key: str) -> str | None:
    st.code(q.params["text"] + "▌", language=None, wrap_lines=True)
    guess = st.text_input(_("The next character (a space counts too)"), max_chars=1, key=f"{key}_char")
    return _submitted(key, guess, _("Type one character first."))


def _ask_region(q: ls.Question, key: str) -> str | None:
    img = test_image(q)[0]
    st.caption(_("Click the place you think Grad-CAM will mark, then check."))
    event = st.plotly_chart(figs.click_image(img, quiz.GRID, _picked(key), height=style.px(230)),
                            key=f"{key}_click", on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False}, width="content")
    pts = (event or {}).get("selection", {}).get("points", []) if event else []
    if pts and pts[-1].get("customdata") is not None:
        r, c = pts[-1]["customdata"][:2]
        st.session_state[f"{key}_cell"] = f"{int(r)},{int(c)}"
    if _check(key):
        if f"{key}_cell" not in st.session_state:
            st.warning(_("Click on the picture first."))
            return None
        return st.session_state[f"{key}_cell"]
    return None


def _picked(key: str) -> tuple[int, int] | None:
    v = st.session_state.get(f"{key}_cell")
    return tuple(int(t) for t in v.split(",")) if v else None


def _ask_head(q: ls.Question, key: str) -> str | None:
    ck = _checkpoint(q.params["model"])
    L, H = ck.model.config.n_layer, ck.model.config.n_head
    heads = [f"{layer}.{h}" for layer in range(L) for h in range(H)]
    st.code(q.params["text"], language=None, wrap_lines=True)
    pick = st.selectbox(_("Layer.head"), heads, index=None, key=f"{key}_head",
                        format_func=lambda s: _("layer {layer}, head {head}").format(layer=s.split(".")[0],
                                                                                    head=s.split(".")[1]))
    return _submitted(key, pick, _("Choose a head first."))


def _ask_lr(q: ls.Question, key: str) -> str | None:
    pick = st.radio(_("Your answer"), ["yes", "no"], index=None, key=f"{key}_yesno", horizontal=True,
                    format_func=lambda v: _("Yes, it goes down") if v == "yes" else _("No, it does not"),
                    label_visibility="collapsed")
    if _check(key):
        if pick is None:
            st.warning(_("Choose an answer first."))
            return None
        return pick
    return None


ASK = {"choice": _ask_choice, "init_loss": _ask_choice, "next_char": _ask_char, "gradcam": _ask_region,
       "head": _ask_head, "lr": _ask_lr}

# ---------------------------------------------------------------------------- the live model's answers


def _weights(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.exists():
        st.error(_("This question needs the shipped model {name}, which is not in weights/.").format(name=name))
        st.stop()
    return path


def _checkpoint(name: str):
    from karp_models.ui.models import load_model
    path = _weights(name)
    return load_model(str(path), path.stat().st_mtime)


def test_image(q: ls.Question) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(grey image (H, W) in [0, 1], the model's input (1, C, H, W), true label) of the question's test image."""
    from karp_models.ui.loaders import dataset
    from karp_models.ui.selection import test_image
    ck = _checkpoint(q.params["model"])
    inp = test_image(dataset(ck.meta["dataset"]), int(q.params["index"]))
    x = inp.x.numpy()
    return x[0].mean(0), x, inp.label


def _ids(ck, text: str) -> list[int]:
    from karp_models.introspect.text import read
    from karp_models.ui.text_views import vocab_of
    return read(vocab_of(ck), text).ids


def _verdict(right: bool, text: str) -> None:
    st.markdown(f"{style.mark(right)}  {text}")


def _grade_choice(q: ls.Question, given: str) -> None:
    truth = str(q.params["options"][int(q.params["answer"])])
    _verdict(given == truth, _("The answer is **{answer}**.").format(answer=truth))


def _grade_char(q: ls.Question, given: str) -> None:
    from karp_models.ui.text_views import vocab_of
    ck = _checkpoint(q.params["model"])
    g = quiz.grade_next_char(ck.model, _ids(ck, q.params["text"]), vocab_of(ck), given)
    _verdict(g.right, _("The model gives your **{guess}** a probability of {p:.1%}; its first choice is "
                        "**{top}** ({q:.1%}).").format(guess=show(given), p=g.guess_prob, top=show(g.top[0]),
                                                        q=float(g.probs[0])))
    st.caption(_("Its five most likely: {chars}").format(
        chars=", ".join(f"{show(c)} {p:.0%}" for c, p in zip(g.top, g.probs))))


def show(c: str) -> str:
    return {" ": "␣", "\n": "↵"}.get(c, c)


def _cam(q: ls.Question) -> tuple[np.ndarray, np.ndarray, int]:
    """(image, Grad-CAM map (H, W), predicted class) for the question's image, through Explain's cache."""
    from karp_models.ui.compute import attributions, probabilities
    img, x, _label = test_image(q)
    path = _weights(q.params["model"])
    probs = probabilities(str(path), path.stat().st_mtime, x)
    target = int(probs.argmax())
    a = attributions(str(path), path.stat().st_mtime, x, target, ("Grad-CAM",))["Grad-CAM"]
    return img, np.clip(a.map, 0, None), target


def _grade_region(q: ls.Question, given: str) -> None:
    from karp_models.ui.loaders import class_names
    img, cam, target = _cam(q)
    r, c = (int(t) for t in given.split(","))
    g = quiz.grade_region(cam, r, c)
    ck = _checkpoint(q.params["model"])
    name = class_names(ck.meta.get("classes", []))[target] if ck.meta.get("classes") else str(target)
    _verdict(g.right, _("Your region holds {share:.0%} of Grad-CAM's map for **{name}**; the best region of that "
                        "size holds {best:.0%} (score {score:.0%}).").format(share=g.share, name=name, best=g.best,
                                                                              score=g.score))
    style.chart(figs.cam_overlay(img, cam, (r, c), g.best_cell, quiz.GRID, height=230),
                key=f"lesson_cam_{r}_{c}", config={"displayModeBar": False}, width="content")
    st.caption(_("Orange: your guess. Green, dashed: where the map lies most."))


def _ranking(q: ls.Question) -> list[tuple[str, float]]:
    ck = _checkpoint(q.params["model"])
    ids, text = _ids(ck, q.params["text"]), q.params["text"]
    path = _weights(q.params["model"])

    def run() -> list[tuple[str, float]]:
        with st.spinner(_("Knocking out every head in turn…")):
            return [(f"{s.layer}.{s.index}", e) for s, e in quiz.head_ranking(ck.model, ids, text)]
    return cache.result(("lesson_heads", str(path), path.stat().st_mtime, tuple(ids)), run)


def _grade_head(q: ls.Question, given: str) -> None:
    ranking = _ranking(q)
    names = [h for h, _e in ranking]
    rank = names.index(given) + 1 if given in names else len(names)
    top, effect = ranking[0]

    def words(h: str) -> str:
        layer, head = h.split(".")
        return _("layer {layer}, head {head}").format(layer=layer, head=head)
    _verdict(rank == 1, _("Knocking out {top} hurts closing quotes most: their log-probability changes by "
                          "{effect:+.2f}. Your head ranks {rank} of {n}.").format(
        top=words(top), effect=effect, rank=rank, n=len(names)))


def _lr_losses(q: ls.Question) -> list[float]:
    lr, steps = float(q.params["lr"]), int(q.params.get("steps", 30))

    def run() -> list[float]:
        bar = st.progress(0.0, text=_("Training {steps} steps at learning rate {lr:g}…").format(steps=steps, lr=lr))
        try:
            return recipe.lr_trial(lr, steps, progress=lambda f: bar.progress(
                min(1.0, f), text=_("Trained {share:.0%} of the steps").format(share=min(1.0, f))))
        finally:
            bar.empty()
    return cache.result(("lesson_lr", lr, steps), run)


def _grade_lr(q: ls.Question, given: str) -> None:
    losses = _lr_losses(q)
    down = recipe.loss_goes_down(losses)
    truth = "yes" if down else "no"
    finite = [v for v in losses if np.isfinite(v)]
    if down:
        text = _("A real run of {n} steps: the loss went from {a:.2f} to {b:.2f}.").format(
            n=len(losses), a=losses[0], b=losses[-1])
    elif len(finite) < len(losses):
        text = _("A real run of {n} steps: the loss blew up (it became infinite).").format(n=len(losses))
    else:
        text = _("A real run of {n} steps: the loss went from {a:.2f} to {b:.2f}, no real fall.").format(
            n=len(losses), a=losses[0], b=losses[-1])
    _verdict(given == truth, text)
    style.chart(figs.loss_curve(losses, height=200), key=f"lesson_lr_{q.params['lr']}",
                config={"displayModeBar": False})


def _grade_init(q: ls.Question, given: str) -> None:
    def run() -> tuple[float, float | None]:
        with st.spinner(_("Building a fresh, untrained network…")):
            return recipe.fresh_initial_loss(q.params["model"], q.params["dataset"])
    loss, expected = cache.result(("lesson_init", q.params["model"], q.params["dataset"]), run)
    options = [str(o) for o in q.params["options"]]
    nearest = min(options, key=lambda o: abs(float(o) - loss))
    _verdict(given == nearest, _("Measured on a fresh network: {loss:.3f}. ln(number of classes) = {ln:.3f}.").format(
        loss=loss, ln=expected if expected is not None else float("nan")))


GRADE = {"choice": _grade_choice, "init_loss": _grade_init, "next_char": _grade_char, "gradcam": _grade_region,
         "head": _grade_head, "lr": _grade_lr}


def truth(q: ls.Question) -> str | None:
    """The right answer in the store's terms, when it is cheap to know (for the teacher's green bar)."""
    if q.kind == "choice":
        return str(q.params["options"][int(q.params["answer"])])
    if q.kind == "head":
        return _ranking(q)[0][0]
    if q.kind == "lr":                              # the short real run the grade uses (cached once run)
        return "yes" if recipe.loss_goes_down(_lr_losses(q)) else "no"
    return None


YES_NO = {"yes": N_("yes"), "no": N_("no")}         # an lr answer as stored -> its short label (with _())


def label(q: ls.Question, answer: str) -> str:
    """An answer as the teacher's chart shows it, in the lesson's language."""
    return _(YES_NO[answer]) if q.kind == "lr" and answer in YES_NO else show(answer)
