"""Evaluate: where a model fails, not one accuracy number. Accuracy with its uncertainty, the
confusion matrix, per-class precision and recall, calibration, the most confident mistakes, an
embedding projector, two models side by side and accuracy under a PGD attack, all on the model's
test split."""
import streamlit as st

from karp_models.i18n import _
from karp_models.ui import evaluate as ui
from karp_models.ui.loaders import dataset
from karp_models.ui.models import model_picker, test_probabilities

st.title(_("Evaluate a model"))
st.markdown(_("##### Where does the model go wrong, how sure is it, and what has it learned to tell apart?"))

picked = model_picker("evaluate_model", task="image")
if picked is None:
    st.stop()
ck, choice = picked
try:
    ds = dataset(choice.dataset)
    probs, labels = test_probabilities(choice.path, choice.mtime)
except Exception as e:  # noqa: BLE001 - data.load explains a missing dataset in words
    st.error(_("The test split of {name} is not here: {error}").format(name=repr(choice.dataset), error=e))
    st.stop()

ui.summary(probs, labels)
view = st.segmented_control(_("View"), ui.VIEWS, default=ui.VIEWS[0], format_func=_, key="evaluate_view",
                            bind="query-params") or ui.VIEWS[0]

if view == "Confusion matrix":
    ui.confusion_section(ds, probs, labels)
elif view == "Calibration":
    ui.calibration_section(probs, labels)
elif view == "Mistakes":
    ui.mistakes_section(ds, probs, labels)
elif view == "Projector":
    ui.projector_section(ds, choice, probs, labels)
elif view == "Under attack":
    ui.robustness_section(choice)
else:
    ui.compare_section(ds, choice, probs, labels)
