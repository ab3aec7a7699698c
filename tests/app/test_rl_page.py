"""AppTest: the reinforcement-learning page runs, trains a tiny live agent a few updates (injected
into the session), draws its rewards and its episode, saves it (and refuses a name that is not
one), and shows each look-inside view of the shipped agents."""
import re
from dataclasses import replace

from karp_models.train.checkpoints import read_metadata
from karp_models.ui import rl as ui

from test_pages import open_page  # tests/app is on sys.path (pytest prepend import mode)


def charts(at) -> list:
    return at.get("plotly_chart")


def tiny_agent():
    s = ui.SETUPS["cartpole-reinforce"]
    return ui.new_agent(replace(s, preset="tiny", per_press=2, config=replace(s.config, batch_size=2)))


def test_rl_page_trains_a_live_agent_and_saves_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    at = open_page("rl.py")
    assert at.title[0].value == "Play: reinforcement learning"
    agent = tiny_agent()
    at.session_state["rl_runs"] = {"cartpole-reinforce": agent}
    at.run()
    assert at.button(key="rl_train").label == "Train 2 updates"
    assert any("No training yet" in i.value for i in at.info)
    at.button(key="rl_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert agent.step == 2 and agent.records[-1].final
    assert any("Update **2**" in m.value for m in at.markdown)
    assert len(charts(at)) >= 2                                   # rewards, the episode's probabilities
    assert any("The agent playing" in m.value for m in at.markdown)
    assert re.fullmatch(r"Train 2 more \(~\d+ s\)", at.button(key="rl_train").label)   # short: one line
    # Stop ends the run at the next update (the click reruns the script) and keeps the agent
    at.button(key="rl_stop").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert agent.step == 2 and at.session_state["rl_runs"]["cartpole-reinforce"] is agent
    assert any("keeps what it learnt" in i.value for i in at.info), [i.value for i in at.info]

    at.text_input(key="rl_name_cartpole-reinforce").input("///").run()
    at.button(key="rl_save").click().run()
    assert any("Could not save" in e.value for e in at.error)
    at.text_input(key="rl_name_cartpole-reinforce").input("my agent").run()
    at.button(key="rl_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    saved = tmp_path / "my-agent.safetensors"
    meta = read_metadata(saved)
    assert meta["model"] == "reinforce" and meta["env"]["eval_episodes"] == ui.LIVE_EVAL_EPISODES
    assert meta["metrics"]["test_episodes"] == ui.LIVE_EVAL_EPISODES


def test_rl_page_looks_inside_the_shipped_agents():
    at = open_page("rl.py")
    for view in ("weights", "saliency", "values"):
        at.segmented_control(key="rl_view").set_value(view).run()
        assert not at.exception, (view, [e.value for e in at.exception])
        assert not any("is not in weights/" in i.value for i in at.info), view
    assert any("Value estimate over the episode" in m.value for m in at.markdown)   # the last: DQN's
    assert not any("the policy says" in m.value for m in at.markdown)              # only the chosen view
    at.segmented_control(key="rl_view").set_value("saliency").run()
    assert any("the policy says" in m.value for m in at.markdown)
    at.radio(key="rl_sal_method").set_value("input_x_gradient").run()
    assert not at.exception, [e.value for e in at.exception]
