"""AppTest: Train's "Karpathy's sanity checks" (issue 24 part 4) measure a fresh network of the settings
above: its first loss beside ln C, a one-batch overfit, and a table of per-layer update ratios."""
import math
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def test_the_checks_measure_the_settings_above():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception
    assert at.selectbox(key="train_recipe_run").value == 0             # the settings above: fast on Fashion-MNIST
    at.button(key="train_recipe_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m for m in at.metric}
    first = metrics["Loss at initialisation"]
    assert abs(float(first.value) - math.log(10)) < 0.25 and first.proto.delta == "ln C = 2.303"
    one = next(m for k, m in metrics.items() if k.startswith("One batch of 16"))
    assert float(one.value) < 0.1 * float(one.proto.delta.removeprefix("from "))
    table = at.dataframe[0].value
    assert list(table["Layer"])[-1] == "classifier.fc.weight"
    assert ((table["Median update / weight"] > 0) & (table["Median update / weight"] < 1)).all()
    assert set(table["Step size"]) <= {"too slow", "too fast", "about right"}
    assert any("It learns one batch by heart." in m.value for m in at.markdown)
