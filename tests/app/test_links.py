"""AppTest: a page's address holds its view (issue 16). A link's parameters set the widgets in a
fresh session; changing a widget puts it in the address; the model chosen on one page is the one
the next page opens with unless its link says otherwise; presentation mode enlarges the page and
its charts."""
import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from karp_models.ui import style

ROOT = Path(__file__).resolve().parents[2]


def opened(page: str, **params) -> AppTest:
    """A fresh session that opens pages/<page> with the link's `params`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}")
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_link_opens_explain_on_its_model_image_and_methods():
    at = opened("explain.py", explain_model="classic-fashion-mnist", explain_source="A test image",
                explain_test_index="7", explain_methods_classic=["Saliency", "Grad-CAM"])
    assert at.selectbox(key="explain_model").value.label == "classic-fashion-mnist"
    assert at.number_input(key="explain_test_index").value == 7
    assert any(m.value.startswith("**test image #7**") for m in at.markdown)
    assert at.multiselect(key="explain_methods_classic").value == ["Saliency", "Grad-CAM"]
    assert list(at.table[0].value.index) == ["Saliency", "Grad-CAM"]


def test_a_link_with_a_missing_model_falls_back_to_the_default():
    at = opened("explain.py", explain_model="a-run-on-another-server")
    assert at.selectbox(key="explain_model").value.label == "fast-fashion-mnist"


def test_a_train_link_keeps_what_it_says_and_the_recipe_for_the_rest():
    at = opened("train.py", train_task="Character language model", train_model="LSTM",
                train_steps="700")
    assert at.selectbox(key="train_model").value == "lstm"
    assert at.number_input(key="train_steps").value == 700
    assert at.select_slider(key="train_lr").value == 3e-3       # the LSTM's recipe: not in the link
    assert at.selectbox(key="train_preset").value == "small"


def test_typed_text_is_in_the_link():
    at = opened("text_attention.py", text_attention_text_shakespeare="Hello, Juliet!")
    assert at.text_area(key="text_attention_text_shakespeare").value == "Hello, Juliet!"
    assert any("Hello,␣Juliet!" in c.value for c in at.caption)      # the window it reads


def test_the_model_chosen_on_predict_is_the_one_explain_opens_with():
    at = opened("predict.py")
    box = at.selectbox(key="predict_model")
    box.set_value(next(c for c in box.options if c == "classic-fashion-mnist")).run()
    at.switch_page("pages/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="explain_model").value.label == "classic-fashion-mnist"


def test_presentation_mode_enlarges_the_page_and_its_charts():
    """(The switch itself is clicked in the browser suite: AppTest drops app.py's sidebar on
    reruns under st.navigation, so here the session starts with it on.)"""
    normal = json.loads(opened("datasets.py").get("plotly_chart")[0].proto.spec)["layout"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[style.PRESENT_KEY] = True
    at.run()
    assert at.toggle(key=style.PRESENT_KEY).value is True
    assert any("html {font-size: 20px;}" in h.proto.body for h in at.get("html"))
    at.switch_page("pages/datasets.py").run()                   # kept for the session
    big = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert big["font"]["size"] == normal["font"]["size"] * style.PRESENT_SCALE
    assert big["height"] == round(normal["height"] * style.PRESENT_SCALE)



def link_page():
    """A page of two linked widgets inside LinkCheck, as app.py runs every page."""
    import streamlit as st

    from karp_models.ui import state
    with state.LinkCheck():
        st.number_input("Index", 0, 9, 0, key="t_index", bind="query-params")
        st.multiselect("Methods", ["Saliency", "Grad-CAM"], ["Saliency"], key="t_methods",
                       bind="query-params")
        st.toggle("Smooth", True, key="t_smooth", bind="query-params")
        st.selectbox("Model", ["fast", "lstm"], format_func=str.upper, key="t_model", bind="query-params")


def link(**params) -> AppTest:
    """link_page opened with the link's `params` (AppTest reruns a page without app.py's code
    around st.navigation, so LinkCheck is checked on a page of its own)."""
    at = AppTest.from_function(link_page, default_timeout=30)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def ignored_warning(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning if "link was ignored" in w.value)


def test_what_a_link_asks_in_vain_is_named_with_its_value():
    at = link(t_index="99", t_methods=["Bogus"], method="nonsense", t_smooth="true", t_model="FAST")
    said = ignored_warning(at)
    for part in ("t_index = 99", "t_methods = Bogus", "method = nonsense"):
        assert part in said
    assert "t_smooth" not in said and "t_model" not in said      # the defaults: taken, not ignored
    assert at.number_input(key="t_index").value == 0
    assert at.multiselect(key="t_methods").value == ["Saliency"]
    assert "method" not in at.query_params                      # the link to share is a clean one
    at.number_input(key="t_index").set_value(3).run()
    assert ignored_warning(at) == ""                            # said once, on the visit


def test_a_link_the_page_can_show_has_no_warning():
    at = link(t_index="7", t_methods=["Saliency", "Grad-CAM"], t_smooth="false", t_model="LSTM",
              lang="zh_CN")
    assert ignored_warning(at) == ""
    assert at.number_input(key="t_index").value == 7
    assert at.multiselect(key="t_methods").value == ["Saliency", "Grad-CAM"]
    assert at.selectbox(key="t_model").value == "lstm"
