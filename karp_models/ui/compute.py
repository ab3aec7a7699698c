"""Cached model computations the pages show, keyed on (model file, its mtime, the input): the
maths is in introspect/ and preprocess, the caching by role here (convention 10).

st.cache_data for results computed without a progress bar; ui.cache.result (a shared, locked
LRU) for the runs that draw a live one, since st.cache_data replays a cached function's st.*
calls and refuses a bar made outside it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st
import torch

from karp_models import preprocess as pp
from karp_models.i18n import L_, _, language
from karp_models.introspect import adversarial as adv
from karp_models.introspect import attribution as attr
from karp_models.introspect import embeddings as emb
from karp_models.introspect import faithfulness as faith
from karp_models.introspect import features as feat
from karp_models.introspect import neurons, sanity
from karp_models.introspect import text as tx
from karp_models.introspect.evaluate import misclassified
from karp_models.train import estimate
from karp_models.ui import cache
from karp_models.ui.loaders import dataset
from karp_models.ui.models import load_model, test_probabilities

Progress = Callable[..., None]


def _model(path: str, mtime: float) -> torch.nn.Module:
    return load_model(path, mtime).model


def _x(x_np: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32))

# ---------------------------------------------------------------------------- Predict


@st.cache_data(max_entries=32, show_spinner=L_("Reading the image…"))
def run_pipeline(data: bytes | None, rgb: np.ndarray | None, name: str, style: str, size: int,
                 channels: int, resize: int | None, lang: str) -> tuple[pp.Decoded | None, pp.Pipeline]:
    """decode (bytes) then preprocess; raises pp.ImageError for a bad file. `lang`: part of the key
    (the steps and notes are in words)."""
    if data is not None:
        return pp.preprocess_file(data, name, style, size=size, channels=channels, resize=resize)
    return None, pp.preprocess(rgb, style, size=size, channels=channels, resize=resize)


@st.cache_data(max_entries=16, show_spinner=False)
def look(_model: torch.nn.Module, key: str, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(probabilities, feature maps per layer) of one input x (C, H, W); `key` names the model."""
    return feat.feature_maps(_model, torch.from_numpy(x)[None])

# ---------------------------------------------------------------------------- Explain


@st.cache_data(max_entries=64, show_spinner=False)
def probabilities(path: str, mtime: float, x_np: np.ndarray) -> np.ndarray:
    """Softmax probabilities (n_classes,) of one input x_np (1, C, H, W)."""
    with torch.no_grad():
        return torch.softmax(_model(path, mtime)(_x(x_np))[0].float(), -1)[0].numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def score_gap(path: str, mtime: float, x_np: np.ndarray, target: int) -> float:
    """f(x) - f(black) for the target's logit: what IG's and DeepLift's attributions should sum to."""
    x = _x(x_np)
    with torch.no_grad():
        logits = _model(path, mtime)(torch.cat([x, torch.zeros_like(x)]))[0]
    return float(logits[0, target] - logits[1, target])


def _attribution_bytes(a: attr.Attribution) -> int:
    return a.attr.nbytes + a.map.nbytes + 512                      # the arrays and the record


# One method's attribution of one image, shared by every session: a class looks at the same
# shipped model and the same test images. Keyed by the weights themselves (attr.fingerprint),
# not the file's name or mtime, so a run retrained under the same name never gets another
# model's maps; bounded by bytes (64 MB: ~1,200 8-method explanations of a 28x28 image).
ATTRIBUTIONS = cache.SharedLRU(100_000, max_bytes=64 * 2**20, sizeof=_attribution_bytes)
SEED, N_STEPS = 0, 50                                              # the page's settings (attribute's)


def attribution_key(model: torch.nn.Module, x_np: np.ndarray, target: int, method: str) -> tuple:
    """ATTRIBUTIONS' key: the weights, the device, the image's bytes, the method, the class and
    the settings (seed, IG's steps) that decide the result."""
    return (attr.fingerprint(model), str(next(model.parameters()).device), cache.image_key(x_np),
            method, int(target), SEED, N_STEPS)


def cached_attributions(model: torch.nn.Module, x_np: np.ndarray, target: int,
                        methods: tuple[str, ...]) -> dict[str, attr.Attribution]:
    """{method: Attribution} of x_np (1, C, H, W) for `target`, each method computed once per
    weights and image in the process (concurrent sessions asking for the same one wait for the
    one computation) on attr.inference_copy of the model; the arrays are read-only."""
    x = _x(x_np)
    out = {}
    for m in methods:
        def compute(m: str = m) -> attr.Attribution:
            a = attr.attribute(attr.inference_copy(model, x), x, target, m, seed=SEED, n_steps=N_STEPS)
            a.attr.setflags(write=False)
            a.map.setflags(write=False)
            return a
        out[m] = ATTRIBUTIONS.get_or_build(attribution_key(model, x_np, target, m), compute)
    return out


def attributions(path: str, mtime: float, x_np: np.ndarray, target: int,
                 methods: tuple[str, ...]) -> dict[str, attr.Attribution]:
    """The attributions of the model in `path` (cached_attributions), with a spinner while any
    is computed."""
    model = _model(path, mtime)
    if all(attribution_key(model, x_np, target, m) in ATTRIBUTIONS for m in methods):
        return cached_attributions(model, x_np, target, methods)
    with st.spinner(_("Computing the attributions…")):
        return cached_attributions(model, x_np, target, methods)


def sanity_check(path: str, mtime: float, x_np: np.ndarray, target: int, methods: tuple[str, ...],
                 seed: int = 0, progress: Progress | None = None, *,
                 compute: bool = True) -> sanity.SanityResult | None:
    """Cascading randomisation (shared by sessions; `progress(done, total, words)`); None when
    not computed yet and not `compute`."""
    key = ("sanity", path, mtime, cache.image_key(x_np), target, methods, seed, language())  # in words
    if not compute:
        return cache.RESULTS.get(key)
    return cache.result(key, lambda: sanity.cascading_randomisation(
        _model(path, mtime), _x(x_np), target, methods, seed=seed, progress=progress))


def faithfulness(path: str, mtime: float, x_np: np.ndarray, target: int, methods: tuple[str, ...],
                 progress: Progress | None = None, *, compute: bool = True) -> list[faith.FaithRow] | None:
    """Infidelity, sensitivity, deletion and insertion per method (shared by sessions); None
    when not computed yet and not `compute`."""
    key = ("faith", path, mtime, cache.image_key(x_np), target, methods, language())  # in words
    if not compute:
        return cache.RESULTS.get(key)

    def run() -> list[faith.FaithRow]:
        a = attributions(path, mtime, x_np, target, methods)
        return faith.faithfulness(_model(path, mtime), _x(x_np), target, a, progress=progress)
    return cache.result(key, run)


@st.cache_data(max_entries=32, show_spinner=L_("Attacking the image…"))
def adversarial(path: str, mtime: float, x_np: np.ndarray, label: int, methods: tuple[str, ...],
                method: str, epsilon: float, lang: str) -> adv.AdversarialResult:
    """`lang`: part of the key (why a map cannot be compared is said in words)."""
    return adv.adversarial(_model(path, mtime), _x(x_np), label, methods, method=method,
                           epsilon=epsilon)


@st.cache_data(max_entries=4, show_spinner=L_("Finding the model's mistakes on the test set…"))
def mistakes(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices of the misclassified test images, most confident first; probabilities; labels)."""
    probs, labels = test_probabilities(path, mtime)
    return misclassified(probs, labels), probs, labels

# ---------------------------------------------------------------------------- Train


def flip_ok(name: str) -> bool:
    """Whether a mirrored image of this dataset keeps its label (clothes yes, digits no)."""
    return bool(getattr(dataset(name), "flip_ok", False))


@st.cache_data(max_entries=32, show_spinner=False)
def augmented_batch(name: str, augment: bool, shift: bool, flip: bool, seed: int,
                    n: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stored, as trained, labels) of n training images: the image task's own batches
    (tasks.images.augmentation_examples), shift off meaning 0 pixels."""
    from karp_models.train.tasks.images import augmentation_examples

    x0, x1, y = augmentation_examples(dataset(name), n, augment=augment, shift=None if shift else 0,
                                      flip=flip, seed=seed)
    return x0.numpy(), x1.numpy(), y.numpy()

# ---------------------------------------------------------------------------- Evaluate


@st.cache_data(max_entries=16, show_spinner=L_("Attacking the test images with PGD…"))
def robustness(path: str, mtime: float, epsilon: float, steps: int, items: int) -> adv.Robustness:
    """Clean and robust accuracy of a model on the first `items` test images under PGD at
    epsilon with `steps` steps of 2.5 * epsilon / steps (the CLI's robust evaluation)."""
    ck = load_model(path, mtime)
    ds = dataset(ck.meta.get("dataset") or "fashion-mnist")
    return adv.robust_accuracy(ck.model, ds.test_x[:items], ds.test_y[:items], epsilon=epsilon,
                               steps=steps, step_size=round(2.5 * epsilon / steps, 6))


@st.cache_data(max_entries=16, show_spinner=L_("Measuring where the saliency maps lie…"))
def saliency_on_object(path: str, mtime: float, items: int) -> tuple[np.ndarray, np.ndarray]:
    """(share of |saliency| on the object, the object's share of the image) for the true class
    of each of the first `items` test images (adversarial.saliency_on_object)."""
    ck = load_model(path, mtime)
    ds = dataset(ck.meta.get("dataset") or "fashion-mnist")
    return adv.saliency_on_object(ck.model, ds.test_x[:items], ds.test_y[:items])


@st.cache_data(max_entries=8, show_spinner=L_("Reading the penultimate layer of the test images…"))
def embedding_features(path: str, mtime: float, n: int, before: bool = False) -> np.ndarray:
    """Penultimate-layer features (n, D) of the first n test images (the test split is shuffled);
    `before`: of the pretrained network a fine-tuned model started from (raises
    WeightsUnavailable when its weights are gone, ValueError for a model that was not fine-tuned)."""
    ck = load_model(path, mtime)
    ds = dataset(ck.meta.get("dataset") or "fashion-mnist")
    model = ck.model
    if before:
        from karp_models.models.finetune import FineTuneConfig
        from karp_models.train.finetune import pretrained_model

        if not isinstance(getattr(model, "config", None), FineTuneConfig):
            raise ValueError(f"{path} was not fine-tuned from a pretrained backbone")
        model = pretrained_model(model.config).to(next(ck.model.parameters()).device)
    return emb.penultimate_features(model, ds.test_x[:n])


@st.cache_data(max_entries=16, show_spinner=False)
def knn_accuracy(path: str, mtime: float, n: int, before: bool = False) -> tuple[float, int]:
    """(leave-one-out k-NN accuracy of the test labels from embedding_features, k): k is 5, or
    fewer for a class with fewer than 6 images (introspect.embeddings.knn_accuracy)."""
    ds = dataset(load_model(path, mtime).meta.get("dataset") or "fashion-mnist")
    return emb.knn_accuracy(embedding_features(path, mtime, n, before), ds.test_y[:n].numpy())


@st.cache_data(max_entries=16, show_spinner=False)
def pca_coords(path: str, mtime: float, n: int, before: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates (n, 2), explained variance ratio (2,)) of the features."""
    return emb.pca_2d(embedding_features(path, mtime, n, before))


def tsne_coords(path: str, mtime: float, n: int, seed: int, *, before: bool = False,
                progress: Progress | None = None, compute: bool = True) -> np.ndarray | None:
    """t-SNE (n, 2) of the features, shared by every session, or computed now (with
    `progress(fraction, words)`) when `compute`; None when not computed yet and not `compute`."""
    key = ("tsne", path, mtime, n, seed, before)
    if not compute:
        return cache.RESULTS.get(key)

    def run() -> np.ndarray:
        coords = emb.tsne_2d(embedding_features(path, mtime, n, before), seed=seed, progress=progress,
                             n_jobs=torch.get_num_threads())   # the app's thread policy (KARP_THREADS)
        coords.setflags(write=False)
        return coords
    return cache.result(key, run)

# ---------------------------------------------------------------------------- text models


@st.cache_data(max_entries=32, show_spinner=L_("Reading the text…"))
def cached_attention(path: str, mtime: float, ids: tuple[int, ...]) -> np.ndarray:
    """Attention (n_layer, n_head, T, T) of a character model over the text `ids`."""
    return tx.attention(_model(path, mtime), ids)


@st.cache_data(max_entries=32, show_spinner=L_("Predicting every next character…"))
def cached_next_chars(path: str, mtime: float, ids: tuple[int, ...], vocab: tuple[str, ...]) -> tx.NextChar:
    return tx.next_char_topk(_model(path, mtime), ids, vocab, k=5)


@st.cache_data(max_entries=4, show_spinner=L_("Running the network step by step…"))  # ~28 MB each at 2,000 x 512
def cached_traces(path: str, mtime: float, ids: tuple[int, ...]) -> dict[str, np.ndarray]:
    return neurons.traces(_model(path, mtime), ids)

# ---------------------------------------------------------------------------- Train


@st.cache_data(max_entries=64, show_spinner=False)
def param_count(model: str, preset: str, dataset_name: str) -> int | None:
    """Parameters of `model` at `preset` built for a dataset (its classes or vocabulary); None
    when the dataset is not here."""
    from karp_models.models import build_for

    try:
        ds = dataset(dataset_name)
    except Exception:  # noqa: BLE001 - a missing dataset: no size to show
        return None
    return sum(p.numel() for p in build_for(model, ds, preset=preset).parameters())


def run_timing(model: str, dataset_name: str, preset: str, batch_size: int, *,
               measure: bool = True, adv_eps: float = 0.0) -> estimate.Timing | None:
    """The measured cost of a run on this machine (estimate.measure), shared by every session
    and measured once per model, dataset, preset, batch size, adversarial epsilon (its steps
    cost several forward and backward passes), device and thread count; None when not measured
    yet and not `measure`."""
    from karp_models import device as dev
    from karp_models.train.runs import RunSpec
    from karp_models.train.trainer import TrainConfig

    key = ("timing", model, dataset_name, preset, batch_size, float(adv_eps), str(dev.pick_device()),
           torch.get_num_threads())
    if not measure:
        return cache.RESULTS.get(key)
    spec = RunSpec(model=model, dataset=dataset_name, preset=preset,
                   config=TrainConfig(steps=1, batch_size=batch_size, adv_eps=float(adv_eps)))
    return cache.result(key, lambda: estimate.measure(spec))
