"""Play: reinforcement learning. An agent learns by trial and error while the class watches: the
reward per episode and its running mean, the agent playing, its action probabilities; then inside
the shipped agents (issue 27; Karpathy's "Pong from Pixels" 2016, Mnih et al. 2015).

Training runs in the page's own script thread, as on the seq2seq page (see pages/seq2seq.py):
any click pauses it, Train continues, Save keeps it as a run."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import rl as ui
from karp_models.ui import style, teacher

st.title(_("Play: reinforcement learning"))
style.projector_css()

# one compact row of controls, then what training shows: at 1280x720 the progress line, the
# reward curve and the agent's clip are on the first screen, in presentation mode too
c0, c1, c2, c3 = st.columns([4, 4, 2, 3], vertical_alignment="bottom")
key = c0.selectbox(_("Agent"), list(ui.SETUPS), format_func=lambda k: _(ui.SETUPS[k].label), key="rl_setup")
agent = ui.get_agent(key)
train = c1.button(ui.train_label(agent), type="primary", key="rl_train", icon=":material/play_arrow:",
                  width="stretch", disabled=not teacher.unlocked())
stop = c2.button(_("Stop"), key="rl_stop", icon=":material/stop:", width="stretch")
c3.button(_("Start over"), key="rl_reset", on_click=ui.reset_agent, args=(key,), width="stretch",
          disabled=agent.step == 0)
teacher.gate(_("train here"), key="rl_teacher")
progress, status = st.empty(), st.empty()
if stop:
    progress.info(ui.stopped_message(agent))
left, right = st.columns([3, 2], gap="medium")
curves, play_area = left.empty(), right.empty()
notes = st.container()
with notes:
    st.caption(_("No labels here: an agent acts, the game answers with a reward, and the agent makes the "
                 "actions that led to more reward more likely (policy gradient), or learns how much "
                 "reward each action will bring (Q-learning). Watch it learn by trial and error."))
    st.caption(_(agent.setup.note) + " " + _("Training runs right here, with one CPU thread. Clicking "
                                             "anything pauses it; press Train again to continue where it stopped."))
    c4, c5 = st.columns([3, 1], vertical_alignment="bottom")
    name = c4.text_input(_("Save as"), value=f"{key}-live", key=f"rl_name_{key}", max_chars=60)
    save = c5.button(_("Save"), key="rl_save", width="stretch", disabled=agent.step == 0)
    if save:
        try:
            with st.spinner(_("Playing its seeded evaluation episodes, then saving…")):
                path = ui.save_agent(agent, name)
            st.success(_("Saved as {path}. Measure it again from the file: python -m karp_models eval --weights {path}").format(
                path=path))
        except (ValueError, OSError) as e:
            st.error(_("Could not save: {error}").format(error=e))
if train and teacher.unlocked():
    ui.train_live(agent, status, progress, curves, play_area)
    st.rerun()
ui.draw(agent, status, curves, play_area)

st.subheader(_("Look inside the shipped agents"))
views = {"weights": (_("Pong policy: what its neurons see"), ui.pong_weights_tab),
         "saliency": (_("Pong: where it looks"), ui.saliency_tab),
         "values": (_("DQN: value over an episode"), ui.dqn_values_tab)}
view = st.segmented_control(_("View"), list(views), format_func=lambda k: views[k][0], default="weights",
                            key="rl_view", label_visibility="collapsed", bind="query-params") or "weights"
views[view][1]()                        # only the chosen view is computed
