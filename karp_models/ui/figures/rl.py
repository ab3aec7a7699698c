"""Figures of the reinforcement-learning page: the agent playing (an animated GIF of an episode:
CartPole drawn from its four numbers, Pong's field as the Atari shows it), the reward per episode
with its running mean, the action probabilities (or DQN's value estimate) over an episode, the Pong
policy's first-layer weights as 80x80 pictures (Karpathy 2016) and the saliency of its action on a
frame. Pure PIL and plotly over arrays (no Streamlit); words through i18n."""
from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from karp_models.i18n import _
from karp_models.ui import style

GIF_FRAMES = 150                 # at most this many frames in one clip (evenly spaced)
CART_W, CART_H = 360, 200        # CartPole drawing, pixels


# --- the agent playing


def cartpole_image(state: np.ndarray, width: int = CART_W, height: int = CART_H) -> np.ndarray:
    """CartPole's state (x, x_dot, theta, theta_dot) drawn as Gymnasium draws it: a cart on a
    track (x in [-2.4, 2.4]) and a pole at angle theta from upright. (height, width, 3) uint8."""
    x, _xd, theta, _td = (float(v) for v in state[:4])
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    scale = width / 4.8                                     # world width 4.8 (2 x 2.4)
    track = int(height * 0.75)
    d.line([(0, track), (width, track)], fill=(0, 0, 0), width=2)
    cx = width / 2 + x * scale
    d.rectangle([cx - 25, track - 15, cx + 25, track + 5], fill=(30, 30, 30))
    length = scale * 1.0                                    # the pole's full length is 1.0 (2 x 0.5)
    tip = (cx + length * np.sin(theta), track - 15 - length * np.cos(theta))
    d.line([(cx, track - 15), tip], fill=(202, 152, 101), width=9)
    d.ellipse([cx - 4, track - 19, cx + 4, track - 11], fill=(129, 132, 203))
    return np.asarray(img)


def frame_image(kind: str, frame: np.ndarray, scale: int = 4) -> np.ndarray:
    """One display frame as RGB: CartPole drawn from its state, a Pong field enlarged `scale`x."""
    if kind == "pixels":
        return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    return cartpole_image(frame)


def episode_gif(kind: str, frames: np.ndarray, fps: float = 8.0, max_frames: int = GIF_FRAMES,
                scale: int = 4) -> bytes:
    """An episode's display frames as a looping animated GIF (at most max_frames, evenly spaced,
    shown `fps` a second: a few a second, so a class can follow the play). Raises ValueError on no
    frames."""
    if frames is None or len(frames) == 0:
        raise ValueError("an episode without frames")
    idx = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    images = [Image.fromarray(frame_image(kind, frames[i], scale)) for i in idx]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0, optimize=False)
    return buf.getvalue()


# --- curves


def reward_figure(x: Sequence[float], reward: Sequence[float], running: Sequence[float],
                  eval_x: Sequence[float] = (), eval_reward: Sequence[float] = (),
                  x_title: str | None = None, height: int = 380) -> go.Figure:
    """Reward per episode (a thin line: each update's mean), its running mean (thick), and the
    held-out seeded evaluations (dots), against episodes (or steps) played."""
    fig = go.Figure()
    fig.add_scatter(x=list(x), y=list(reward), mode="lines", name=_("episode reward"),
                    line=dict(color="#9ecae1", width=1.5))
    fig.add_scatter(x=list(x), y=list(running), mode="lines", name=_("running mean"),
                    line=dict(color="#08519c", width=3.5))
    if len(eval_x):
        fig.add_scatter(x=list(eval_x), y=list(eval_reward), mode="markers", name=_("seeded evaluation"),
                        marker=dict(color="#d62728", size=10, symbol="diamond"))
    fig.update_xaxes(title_text=x_title or _("episodes played"))
    fig.update_yaxes(title_text=_("reward"))
    # the legend inside the plot, top left (rewards start low): no band above it, so the curve
    # fits on the first screen at 1280x720 under the page's controls
    return style.big_axes(style.layout(fig, height=height, margin=dict(l=10, r=10, t=10, b=10),
                                       legend=dict(yanchor="top", y=0.99, xanchor="left", x=0.01,
                                                   bgcolor="rgba(255,255,255,0.35)")))   # the curve shows through


def actions_figure(probs: np.ndarray | None, values: np.ndarray | None, rewards: np.ndarray,
                   action_names: Sequence[str], height: int = 300) -> go.Figure:
    """Over one episode: the policy's probability of each action (of the second, when there are
    two), or, for DQN, its value
    estimate max_a Q), with the steps where a point was won (reward > 0, green triangle) or lost
    (reward < 0, red cross) marked; a reward that is the same every step (CartPole's +1) marks nothing.
    probs (steps, actions) or None, values (steps,) or None, rewards (steps,)."""
    fig = go.Figure()
    t = np.arange(len(rewards))
    if probs is not None:                         # two actions: one line says it all (they sum to 1)
        shown = [1] if probs.shape[1] == 2 else range(probs.shape[1])
        for a in shown:
            fig.add_scatter(x=t, y=probs[:, a], mode="lines",
                            name=_("P({action})").format(action=action_names[a]),
                            line=dict(width=1.5, color=style.CATEGORY[a % len(style.CATEGORY)]))
        fig.update_yaxes(title_text=_("probability"), range=[0, 1.08])
    if values is not None:
        fig.add_scatter(x=t[:len(values)], y=values, mode="lines", name=_("value estimate max Q"),
                        line=dict(width=2.5, color="#6a3d9a"))
        fig.update_yaxes(title_text=_("expected future reward"), rangemode="tozero")
    rewards = np.asarray(rewards, dtype=np.float64)
    per_step = len(rewards) > 0 and bool(np.all(rewards == rewards[0]))    # CartPole: +1 every step
    points = np.array([], int) if per_step else np.flatnonzero(rewards != 0)   # Pong's points won (+1) and lost (-1)
    if len(points):
        y = 1.02 if probs is not None else float(np.nanmax(values)) if values is not None and len(values) else 0
        fig.add_scatter(x=points, y=[y] * len(points), mode="markers", name=_("point won / lost"),
                        marker=dict(size=11, symbol=["triangle-up" if rewards[i] > 0 else "x" for i in points],
                                    color=["#2ca02c" if rewards[i] > 0 else "#d62728" for i in points]))
    fig.update_xaxes(title_text=_("step of the episode"))
    fig.update_layout(showlegend=True)            # one line still says what it is
    return style.big_axes(style.layout(fig, height=height, margin=dict(l=10, r=10, t=40, b=10),
                                       legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0)))


# --- inside the Pong policy


def tile_images(images: np.ndarray, cols: int, gap: int = 2) -> np.ndarray:
    """(n, h, w) images in a grid of `cols` columns, NaN between them: (rows*(h+gap)-gap, ...)."""
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = images[i]
    return out


def weights_figure(images: np.ndarray, neurons: Sequence[int], cols: int = 8, height: int = 560) -> go.Figure:
    """First-layer weights of the chosen neurons, each an 80x80 picture of what it responds to in
    the frame difference (red: a pixel that lights up there raises the neuron, blue lowers it);
    each picture scaled to its own largest weight."""
    sel = images[list(neurons)]
    sel = sel / np.maximum(np.abs(sel).reshape(len(sel), -1).max(1), 1e-12)[:, None, None]
    z = tile_images(sel, cols)
    h, w = images.shape[1:]
    text = np.full(z.shape, "", object)
    for i, n in enumerate(neurons):
        r, c = divmod(i, cols)
        text[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = str(n)
    fig = go.Figure(go.Heatmap(z=z, zmin=-1, zmax=1, colorscale=style.SIGNED_SCALE, showscale=False,
                               customdata=text, hovertemplate=_("neuron %{customdata}") + "<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return style.layout(fig, height=height, margin=dict(l=0, r=0, t=0, b=0))


def saliency_figure(field: np.ndarray, seen: np.ndarray, saliency: np.ndarray, height: int = 380) -> go.Figure:
    """Three panels of one moment of a game: the field (80, 80, 3) uint8, what the network sees
    (the frame difference, (80, 80) in -1..1), and the saliency of its action (80, 80) >= 0 (or
    signed, for gradient x input) over the field."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.03, subplot_titles=(
        _("the game"), _("what the network sees: this frame minus the last"), _("saliency of its action")))
    fig.add_trace(go.Image(z=field, hoverinfo="skip"), 1, 1)
    fig.add_trace(go.Heatmap(z=seen, zmin=-1, zmax=1, colorscale="Greys", showscale=False,
                             hoverinfo="skip"), 1, 2)
    m = float(np.abs(saliency).max()) or 1.0
    signed = bool((saliency < 0).any())
    fig.add_trace(go.Heatmap(z=saliency / m, zmin=-1 if signed else 0, zmax=1, showscale=False,
                             colorscale=style.SIGNED_SCALE if signed else "Hot_r", hoverinfo="skip"), 1, 3)
    for i in (1, 2, 3):
        fig.update_xaxes(visible=False, row=1, col=i)
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_annotations(font_size=style.SMALL)
    return style.layout(fig, height=height, margin=dict(l=0, r=0, t=40, b=0))
