"""The reinforcement-learning page's pieces: this session's live agent (trained in the page's own
script thread through the one Trainer, as the seq2seq page trains its translator: see
pages/seq2seq.py for why), its redraws (reward curves, the agent playing, its action
probabilities), saving it as a run, and the shipped agents looked inside (the Pong policy's
weights, the saliency of its action, a DQN's value estimate over an episode)."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from karp_models.i18n import N_, _
from karp_models.introspect import rl as irl
from karp_models.models import build_for
from karp_models.rl import envs
from karp_models.train import previews, runs
from karp_models.train.checkpoints import CheckpointError, load_checkpoint
from karp_models.train.tasks import final_metrics, make_task
from karp_models.train.tasks.rl import AgentPreview, play
from karp_models.train.trainer import Record, TrainConfig, Trainer, TrainerBusy
from karp_models.ui import style
from karp_models.ui.figures import rl as figs

KEY = "rl_runs"
LIVE_EVAL_EPISODES = 10          # a live run's evaluations: 10 seeded episodes (the CLI's: the env's own)


@dataclass(frozen=True)
class Setup:
    """One agent the page can train live: which model on which environment, how, and how much one
    press of Train adds."""

    label: str
    note: str
    model: str
    env: str
    preset: str
    config: TrainConfig
    per_press: int
    log_every: int


SETUPS: dict[str, Setup] = {s.env + "-" + s.model: s for s in (
    Setup(N_("CartPole: REINFORCE"), N_("REINFORCE on CartPole usually balances the pole for all 500 steps "
                                        "after one press."), "reinforce", "cartpole", "cartpole",
          TrainConfig(steps=30, batch_size=10, lr=1e-2, schedule="constant", warmup=0.0, grad_clip=0.0,
                      eval_every=0, weight_decay=0.0), 30, 1),
    Setup(N_("CartPole: DQN"), N_("DQN learns from replayed experience against a target network; it "
                                  "needs several presses and its reward swings on the way."), "dqn", "cartpole", "cartpole",
          TrainConfig(steps=3000, batch_size=64, lr=5e-4, schedule="constant", warmup=0.0, grad_clip=10.0,
                      eval_every=0, weight_decay=0.0), 3000, 100),
    Setup(N_("Pong from pixels: REINFORCE"), N_("Pong from pixels needs days of training, not minutes: "
                                                "here you see how it starts."), "reinforce", "pong", "pong",
          TrainConfig(steps=5, batch_size=1, lr=1e-3, schedule="constant", warmup=0.0, grad_clip=0.0,
                      eval_every=0, weight_decay=0.0), 5, 1),
)}


@dataclass
class LiveAgent:
    """This session's agent for one setup: its Trainer, the records so far, the latest preview."""

    setup: Setup
    trainer: Trainer
    env: envs.EnvData
    records: list[Record] = field(default_factory=list)
    preview: AgentPreview | None = None
    step_s: float | None = None

    @property
    def step(self) -> int:
        return self.trainer.step


def new_agent(setup: Setup) -> LiveAgent:
    """An untrained agent (seeded as the CLI seeds it), its first preview a seeded episode."""
    env = dataclasses.replace(envs.ENVS[setup.env], eval_episodes=LIVE_EVAL_EPISODES)
    torch.manual_seed(setup.config.seed)
    model = build_for(setup.model, env, preset=setup.preset)
    task = make_task(env, model, kind=setup.model)
    trainer = Trainer(model, task, setup.config)
    agent = LiveAgent(setup=setup, trainer=trainer, env=env)
    agent.preview = previews.make(task, model, trainer.device, 0)
    return agent


def get_agent(key: str) -> LiveAgent:
    runs_ = st.session_state.setdefault(KEY, {})
    if key not in runs_:
        with st.spinner(_("Playing a first game with the untrained agent, to show how it starts…")):
            runs_[key] = new_agent(SETUPS[key])
    return runs_[key]


def reset_agent(key: str) -> None:
    st.session_state.get(KEY, {}).pop(key, None)


# --- drawing


def status_line(agent: LiveAgent) -> str:
    rec = agent.records[-1] if agent.records else None
    unit = _("episodes") if agent.trainer.task.unit == "episodes" else _("environment steps")
    line = _("Update **{step:,}** · {items:,} {unit} · {s:.0f} s of training").format(
        step=agent.step, items=agent.trainer.items, unit=unit, s=agent.trainer.elapsed)
    if rec is not None and "running_reward" in rec.scalars and np.isfinite(rec.scalars["running_reward"]):
        line += " · " + _("running mean reward **{r:.1f}**").format(r=rec.scalars["running_reward"])
    ev = next((r for r in reversed(agent.records) if r.val_loss is not None), None)
    if ev is not None:
        line += " · " + _("{n} seeded episodes: mean reward **{r:.1f}**").format(
            n=LIVE_EVAL_EPISODES, r=ev.scalars.get("val_mean_return", -ev.val_loss))
    return line


def reward_chart(agent: LiveAgent, tag: str) -> None:
    recs = [r for r in agent.records if "episode_reward" in r.scalars]
    if not recs:
        st.info(_("No training yet: the rewards appear here when you press **Train**."))
        return
    per = agent.trainer.task.items_per_epoch
    x = [r.epoch * per for r in recs]
    ev = [r for r in agent.records if r.val_loss is not None]
    fig = figs.reward_figure(x, [r.scalars["episode_reward"] for r in recs],
                             [r.scalars["running_reward"] for r in recs],
                             [r.epoch * per for r in ev], [r.scalars.get("val_mean_return", -r.val_loss) for r in ev],
                             x_title=_("episodes played") if agent.trainer.task.unit == "episodes"
                             else _("environment steps"), height=250)
    style.chart(fig, width="stretch", config={"displayModeBar": False}, key=f"rl_rewards_{tag}")


def show_episode(p: AgentPreview | None, tag: str, where=st) -> None:
    """The agent playing its latest episode (a looping clip, a few frames a second) and what it
    thought at each step."""
    if p is None or p.frames is None:
        where.info(_("No episode yet."))
        return
    with where.container():
        st.markdown(_("**The agent playing** (update {step:,}): reward **{total:g}** in {n:,} steps").format(
            step=p.step, total=p.total, n=len(p.actions)))
        fps = 12 if p.kind == "state" else 10
        st.image(episode_clip(p.kind, p.frames, fps), width=360 if p.kind == "state" else 320)
        st.caption(_("A clip of the whole episode, {fps} frames a second, looping.").format(fps=fps))
        fig = figs.actions_figure(p.probs, p.values, p.rewards, [_(a) for a in p.action_names], height=300)
        style.chart(fig, width="stretch", config={"displayModeBar": False}, key=f"rl_actions_{tag}")


def episode_clip(kind: str, frames: np.ndarray, fps: float) -> bytes:
    return figs.episode_gif(kind, frames, fps=fps, scale=3)


def draw(agent: LiveAgent, status, curves, play_area, tag: str = "page") -> None:
    status.markdown(status_line(agent))
    with curves.container():
        reward_chart(agent, tag)
    show_episode(agent.preview, tag, play_area)


def train_live(agent: LiveAgent, status, progress, curves, play_area, redraw_s: float = 1.0) -> None:
    """Train one press's worth of updates in this script run, redrawing at most every redraw_s
    seconds; any click stops the loop (the agent keeps what it learned). A press while the last
    loop is still stopping waits for it, then says so."""
    try:
        _train(agent, status, progress, curves, play_area, redraw_s)
    except TrainerBusy:
        progress.warning(_("The previous training is still stopping: press Train again in a moment."))


def _train(agent: LiveAgent, status, progress, curves, play_area, redraw_s: float) -> None:
    tr, n = agent.trainer, agent.setup.per_press
    start, t0, last = tr.step, time.perf_counter(), 0.0
    tr.cfg = dataclasses.replace(tr.cfg, steps=tr.step + n)
    for rec in tr.run(log_every=agent.setup.log_every):
        agent.records.append(rec)
        progress.progress(min(1.0, (rec.step - start) / n), text=_(
            "Training: update {done:,} of {n:,} ({s:.0f} s). Stop keeps what it has learnt.").format(
            done=rec.step - start, n=n, s=tr.elapsed))
        if rec.final or time.perf_counter() - last > redraw_s:
            agent.preview = previews.make(tr.task, tr.model, tr.device, rec.step)
            draw(agent, status, curves, play_area, tag=f"{rec.step}{'f' if rec.final else ''}")
            last = time.perf_counter()
    progress.progress(1.0, text=_("Done: {n:,} updates in {s:.0f} s of training").format(n=tr.step, s=tr.elapsed))
    agent.step_s = (time.perf_counter() - t0) / max(1, tr.step - start)


def stopped_message(agent: LiveAgent) -> str:
    """What Stop did: the run ended at the next update; the agent keeps what it learnt."""
    return _("Stopped after update {step:,}: the agent keeps what it learnt. Press Train to continue "
             "from here.").format(step=agent.step)


def train_label(agent: LiveAgent) -> str:
    n = agent.setup.per_press
    if agent.step == 0:
        return _("Train {n} updates").format(n=n)
    if agent.step_s is None:
        return _("Train {n} more updates").format(n=n)
    return _("Train {n} more (~{s} s)").format(n=n, s=max(1, round(agent.step_s * n)))   # one line at 1280x720


def save_agent(agent: LiveAgent, name: str) -> str:
    """Save the agent as a run in the runs folder (its seeded evaluation measured first); the
    file's path. Raises ValueError for an unusable name, OSError when it cannot be written."""
    s = agent.setup
    spec = runs.RunSpec(model=s.model, dataset=s.env, config=agent.trainer.cfg, preset=s.preset,
                        label=name)
    prepared = runs.Prepared(trainer=agent.trainer, data=agent.env, preset=s.preset)
    metrics = final_metrics(agent.trainer.task, agent.trainer.model, agent.trainer.device)
    path = runs.run_path(name)
    runs.save_run(path, spec, prepared, metrics)
    return str(path)


# --- shipped agents, looked inside


@st.cache_resource(show_spinner=False, max_entries=4)
def shipped(file: str):
    """A shipped agent (eval mode) and its metadata; None when the file is not here or unreadable."""
    try:
        ck = load_checkpoint(runs.WEIGHTS_DIR / file)
    except (CheckpointError, OSError):
        return None
    return ck.model.eval(), ck.meta


@st.cache_data(show_spinner=False, max_entries=8)
def seeded_episode(file: str, seed: int) -> dict | None:
    """One seeded episode of a shipped agent: observations, display frames, rewards,
    probabilities or values (as play() keeps them)."""
    got = shipped(file)
    if got is None:
        return None
    model, meta = got
    env = envs.ENVS[meta["dataset"]]
    ep = play(model, env, seed)
    return dataclasses.asdict(ep)


def weights_view(model) -> np.ndarray:
    return irl.first_layer_images(model)


def saliency(model, obs: np.ndarray, method: str) -> tuple[int, np.ndarray, np.ndarray]:
    """The policy's most probable action on one frame difference, its probabilities, and the
    saliency of that action (80, 80)."""
    x = torch.from_numpy(obs.astype(np.float32))
    a, p = irl.policy_action(model, x)
    s = irl.action_saliency(model, x, a, method)
    side = envs.PONG_SIDE
    return a, p, s.reshape(side, side)


def describe(meta: dict) -> str:
    """What a shipped agent's file says it measured, in words."""
    m, tr = meta.get("metrics", {}), meta.get("train", {})
    env = meta.get("env", {})
    return _("Measured: mean reward **{r:.2f}** (± {sd:.2f}) over {n} seeded episodes · trained {steps:,} "
             "updates in {min:.0f} min on {device}").format(
        r=m.get("test_mean_return", float("nan")), sd=m.get("test_return_std", float("nan")),
        n=int(m.get("test_episodes", env.get("eval_episodes", 0))), steps=tr.get("steps", 0),
        min=tr.get("time_s", 0) / 60, device=tr.get("device", "?"))


# --- the look-inside tabs

PONG_FILE = "reinforce-pong.safetensors"
DQN_FILE = "dqn-cartpole.safetensors"
SALIENCY_NAMES = {"saliency": N_("Saliency: |gradient|"), "input_x_gradient": N_("Gradient × input")}


def _missing(file: str) -> None:
    st.info(_("The shipped agent {file} is not in weights/ here: train it with the command in the "
              "README, or train one live above.").format(file=file))


def pong_weights_tab() -> None:
    got = shipped(PONG_FILE)
    if got is None:
        return _missing(PONG_FILE)
    model, meta = got
    st.markdown(describe(meta))
    images = weights_view(model)
    n = st.slider(_("Neurons shown"), 8, 64, 32, step=8, key="rl_neurons")
    strong = np.argsort(-np.abs(model.fc2.weight.detach().numpy()[0]))[:n]     # those the decision leans on most
    st.caption(_("Each picture is one of the {h} hidden neurons: its weight on each of the 80x80 pixels of "
                 "the frame difference (red raises it, blue lowers it). Shown: the {n} with the largest "
                 "weight into the decision. Well trained, they show the ball's and the paddles' paths "
                 "(Karpathy 2016); after a short run most still look like noise.").format(h=len(images), n=n))
    style.chart(figs.weights_figure(images, [int(i) for i in sorted(strong)], cols=8,
                                    height=max(200, 70 * ((n + 7) // 8))),
                width="stretch", config={"displayModeBar": False}, key="rl_weights")


def saliency_tab() -> None:
    got = shipped(PONG_FILE)
    if got is None:
        return _missing(PONG_FILE)
    model, meta = got
    c1, c2 = st.columns([1, 1])
    seed = c1.number_input(_("Episode seed"), 0, 9999, 0, key="rl_sal_seed")
    method = c2.radio(_("Attribution"), list(SALIENCY_NAMES), format_func=lambda k: _(SALIENCY_NAMES[k]),
                      horizontal=True, key="rl_sal_method")
    with st.spinner(_("Playing a seeded game…")):
        ep = seeded_episode(PONG_FILE, int(seed))
    steps = ep["frame_steps"]
    t = st.select_slider(_("Moment of the game (step)"), [int(v) for v in steps],
                         value=int(steps[min(60, len(steps) - 1)]), key=f"rl_sal_t_{seed}")
    k = int(np.searchsorted(steps, t))
    a, p, sal = saliency(model, ep["obs"][t], method)
    names = [_(x) for x in envs.PONG.action_names]
    st.markdown(_("Step {t}: the policy says **{action}** with probability {p:.0%}.").format(
        t=t, action=names[a], p=float(p[a])))
    seen = ep["obs"][t].reshape(envs.PONG_SIDE, envs.PONG_SIDE).astype(np.float32)
    style.chart(figs.saliency_figure(ep["frames"][k], seen, sal), width="stretch",
                config={"displayModeBar": False}, key="rl_saliency")
    st.caption(_("Saliency: how much each pixel, changed a little, would change the probability of "
                 "this action. Gradient × input is the same gradient times what is really there, so "
                 "only the moving ball and paddles light up."))


def dqn_values_tab() -> None:
    got = shipped(DQN_FILE)
    if got is None:
        return _missing(DQN_FILE)
    model, meta = got
    st.markdown(describe(meta))
    seed = st.columns([1, 3])[0].number_input(_("Episode seed"), 0, 9999, 0, key="rl_dqn_seed")
    ep = seeded_episode(DQN_FILE, int(seed))
    left, right = st.columns([1, 2])
    left.image(episode_clip("state", ep["frames"], 12), width=360)
    with right:
        st.markdown(_("**Value estimate over the episode:** max over actions of Q(state, action), the "
                      "reward the network expects from here on, discounted by 0.99 a step: a pole kept up "
                      "for ever is worth 100. An estimate above 100 is Q-learning's overestimation (the max "
                      "of noisy estimates is too high). Reward {total:g} in {n} steps.").format(total=float(ep["rewards"].sum()),
                                                                          n=len(ep["rewards"])))
        fig = figs.actions_figure(None, ep["values"], ep["rewards"], [], height=300)
        style.chart(fig, width="stretch", config={"displayModeBar": False}, key="rl_values")
