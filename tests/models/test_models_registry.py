"""Registry: names and specs from the contract, build / build_for / from_config round trips."""

import json
from dataclasses import asdict
from types import SimpleNamespace

import pytest
import torch

from karp_models.models import REGISTRY, ModelSpec, build, build_for, from_config

# small overrides so every preset builds quickly; the structure is what's tested
QUICK = {"resnet18": dict(image_size=8), "vit": dict(n_layer=1), "gpt": dict(n_layer=1)}


def test_names_tasks_and_weights_follow_the_contract():
    assert set(REGISTRY) == {"classic", "fast", "tinyvgg", "resnet18", "vit", "finetune", "rnn", "lstm", "gru",
                             "gpt", "dcgan", "cdcgan", "vae", "cvae", "caption-lstm", "caption-attention",
                             "reinforce", "dqn"}
    defaults = {"text": "shakespeare", "finetune": "mnist", "caption": "scenes", "reinforce": "cartpole",
                "dqn": "cartpole"}
    for name, spec in REGISTRY.items():
        assert isinstance(spec, ModelSpec) and spec.name == name
        assert spec.task in ("image", "text", "finetune", "gan", "vae", "caption", "reinforce", "dqn") \
            and spec.default_preset in spec.presets
        assert spec.data == {"text": "text", "caption": "scenes", "reinforce": "env", "dqn": "env"}.get(
            spec.task, "image")
        assert spec.default_dataset == defaults.get(spec.task, "fashion-mnist")
        assert all(w.endswith(".safetensors") and "/" not in w for w in spec.weights)
    assert REGISTRY["gpt"].weights[0] == "gpt-shakespeare.safetensors"
    assert REGISTRY["lstm"].weights[0] == "lstm-shakespeare.safetensors"


def test_every_registered_weights_file_is_shipped_for_its_model():
    from pathlib import Path

    from karp_models.train.checkpoints import read_metadata

    weights = Path(__file__).resolve().parents[2] / "weights"
    listed = {w for spec in REGISTRY.values() for w in spec.weights}
    assert listed == {p.name for p in weights.glob("*.safetensors")}
    for name, spec in REGISTRY.items():
        for w in spec.weights:
            assert read_metadata(weights / w)["model"] == name
    assert REGISTRY["tinyvgg"].weights == ()


@pytest.mark.parametrize("name,preset", [(n, p) for n, s in REGISTRY.items() for p in s.presets])
def test_from_config_round_trips_through_json(name, preset):
    torch.manual_seed(0)
    m = build(name, preset=preset, **QUICK.get(name, {}))
    stored = json.loads(json.dumps(asdict(m.config)))                 # tuples come back as lists
    m2 = from_config(name, stored)
    assert m2.config == m.config
    assert {k: v.shape for k, v in m2.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    m2.load_state_dict(m.state_dict(), strict=True)
    m.eval(), m2.eval()
    if REGISTRY[name].task in ("image", "finetune", "vae", "caption"):
        C, S = m.config.in_channels, m.config.image_size
        x = torch.rand(2, C, S, S)
    elif REGISTRY[name].task == "gan":
        x = torch.randn(2, m.config.latent)
    elif REGISTRY[name].data == "env":                                  # an agent: observations
        x = torch.randn(2, m.config.obs_dim)
    else:
        x = torch.randint(0, m.config.vocab_size, (2, 8))
    labels = torch.tensor([1, 2]) if getattr(m.config, "conditional", False) else None
    if REGISTRY[name].task == "vae":                                     # a sampled z: the same noise for both
        torch.testing.assert_close(m2.generate(m2.encode(x, labels)[0], labels),
                                   m.generate(m.encode(x, labels)[0], labels))
    elif labels is not None:
        torch.testing.assert_close(m2(x, labels), m(x, labels))
    else:
        torch.testing.assert_close(m2(x)[0], m(x)[0])


def test_names_pin_their_architecture():
    assert build("fast").config.arch == "fast"
    assert build("gru", preset="small").config.cell == "gru"
    with pytest.raises(ValueError):
        build("fast", preset="classic")                                # a preset from another entry
    with pytest.raises(ValueError):
        build("lstm", cell="gru")
    with pytest.raises(ValueError):
        from_config("classic", asdict(build("fast").config))
    with pytest.raises(ValueError):
        build("gpt", n_heads=4)                                        # typo'd field name
    with pytest.raises(KeyError):
        build("alexnet")


def test_build_for_reads_shapes_from_the_data():
    image = SimpleNamespace(name="toy", channels=3, size=(16, 16), n_classes=4,
                            mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    for name in ("classic", "fast", "tinyvgg", "vit"):
        m = build_for(name, image, **QUICK.get(name, {}))
        c = m.config
        assert (c.in_channels, c.image_size, c.n_classes, c.mean, c.std) == (3, 16, 4, image.mean, image.std)
        assert m(torch.rand(2, 3, 16, 16))[0].shape == (2, 4)
    text = SimpleNamespace(name="toy", vocab_size=29)
    for name in ("rnn", "lstm", "gru", "gpt"):
        m = build_for(name, text, preset="names", **QUICK.get(name, {}))
        assert m.config.vocab_size == 29
        assert m(torch.randint(0, 29, (2, 5)))[0].shape == (2, 5, 29)
    assert build_for("gpt", text, preset="nano", block_size=8).config.block_size == 8  # overrides win
    with pytest.raises(TypeError):
        build_for("gpt", image)
    with pytest.raises(ValueError):
        build_for("vit", image, preset="fashion-p8")
    with pytest.raises(TypeError):
        build_for("fast", text)
    with pytest.raises(ValueError):
        build_for("fast", SimpleNamespace(**{**vars(image), "size": (16, 20)}))
    scenes = SimpleNamespace(**{**{k: v for k, v in vars(image).items() if k != "n_classes"}, "size": (32, 32),
                                "vocab": ("<pad>",) * 9, "vocab_size": 9, "max_len": 7, "PAD": 0, "BOS": 1, "EOS": 2})
    for name in ("caption-lstm", "caption-attention"):
        c = build_for(name, scenes, preset="tiny").config
        assert (c.in_channels, c.image_size, c.vocab_size, c.max_len, c.mean) == (3, 32, 9, 9, image.mean)
        with pytest.raises(TypeError):
            build_for(name, image)
    with pytest.raises(TypeError):
        build_for("fast", scenes)                                      # a captioned set has no classes
    with pytest.raises(TypeError):
        build_for("gpt", scenes)


@pytest.mark.parametrize("C,S,patch", [(1, 28, 7), (3, 32, 4), (1, 8, 4)])
def test_build_for_fits_the_vit_patch_to_the_image(C, S, patch):
    data = SimpleNamespace(name="toy", channels=C, size=(S, S), n_classes=10, mean=(0.5,) * C, std=(0.5,) * C)
    m = build_for("vit", data, n_layer=1)
    assert m.config.patch_size == patch and S % patch == 0
    assert m(torch.rand(1, C, S, S))[0].shape == (1, 10)
    assert build_for("vit", data, preset="fashion-p4", n_layer=1).config.patch_size == 4
    if S == 28:
        with pytest.raises(ValueError):                                 # an explicit choice is not second-guessed
            build_for("vit", data, patch_size=5)
