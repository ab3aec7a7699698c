"""models.finetune: a backbone with a new head. The backbone computes what the original network
computed (checked against the karp CNN and the torchvision model it came from); its weights load
under the original names; 'head' freezes everything else, in eval mode."""
import dataclasses
import json

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn

from karp_models.introspect.embeddings import penultimate_layer
from karp_models.introspect.features import feature_maps
from karp_models.models import build_for, from_config
from karp_models.models.cnn import CNN, CNNConfig
from karp_models.models.finetune import (FineTune, FineTuneConfig, fit_data, layer_table)

SMALL_FAST = CNNConfig(arch="fast", widths=(4, 8, 8, 16), n_classes=10, mean=(0.3,), std=(0.4,))
W = {"resnet18": "ResNet18_Weights.IMAGENET1K_V1", "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
     "vgg16": "VGG16_Weights.IMAGENET1K_V1"}


def karp_config(cnn: CNNConfig = SMALL_FAST, **kw) -> FineTuneConfig:
    return FineTuneConfig(source="karp", arch=cnn.arch, backbone_config=dataclasses.asdict(cnn), **kw)


def test_a_karp_backbone_computes_what_the_cnn_computed():
    torch.manual_seed(0)
    cnn = CNN(SMALL_FAST).eval()
    m = FineTune(karp_config(n_classes=3, mode="whole"))
    assert set(m.pretrained_keys) == set(cnn.state_dict()) - {"classifier.fc.weight", "classifier.fc.bias"}
    assert m.replaced_keys == ("classifier.fc.weight", "classifier.fc.bias")
    m.load_backbone(cnn.state_dict())
    m.eval()
    x = torch.rand(4, 1, 28, 28)
    assert m.config.mean == (0.3,) and m.config.in_channels == 1 and m.config.image_size == 28
    z = (x - 0.3) / 0.4
    torch.testing.assert_close(m.features(z), cnn.features(z))          # the backbone, unchanged
    assert m(x)[0].shape == (4, 3) and m.head.out_features == 3
    assert m.feature_layers == cnn.feature_layers and penultimate_layer(m) == "classifier.dropout"
    assert list(feature_maps(m, x[:1])[1]) == cnn.feature_layers


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_large"])
def test_a_torchvision_backbone_computes_what_torchvision_computed(arch):
    torch.manual_seed(0)
    ref = tvm.get_model(arch, weights=None).eval()
    m = FineTune(FineTuneConfig(source="torchvision", arch=arch, weights=W[arch], n_classes=5))
    m.load_backbone(ref.state_dict())
    m.eval()
    last = "fc" if arch == "resnet18" else "classifier.3"
    assert m.replaced_keys == (f"{last}.weight", f"{last}.bias")
    assert len(m.pretrained_keys) == len(ref.state_dict()) - 2
    x = torch.rand(1, 3, 224, 224)
    z = (x - m.mean) / m.std
    # the features before the old last layer equal torchvision's (a hook on its input)
    seen = {}
    old_last = ref.fc if arch == "resnet18" else ref.classifier[3]
    h = old_last.register_forward_hook(lambda mod, inp, out: seen.setdefault("x", inp[0]))
    with torch.no_grad():
        ref(z)
        mine = m.classifier[:-1](m.features(z))
    h.remove()
    torch.testing.assert_close(mine, seen["x"])
    assert (m.config.image_size, m.config.resize_size) == (224, 256 if arch == "resnet18" else 232)
    assert m.config.mean == (0.485, 0.456, 0.406)
    maps = feature_maps(m, x)[1]
    assert list(maps) == m.feature_layers and all(v.ndim == 3 for v in maps.values())
    assert not any(getattr(mod, "inplace", False) for mod in m.modules())


def test_vgg16_layout_on_the_meta_device():
    """The real VGG16 (138M parameters) built without memory: names, head and spatial layers."""
    with torch.device("meta"):
        m = FineTune(FineTuneConfig(source="torchvision", arch="vgg16", weights=W["vgg16"], n_classes=4))
    assert m.feature_layers == ["features.3", "features.8", "features.15", "features.22", "features.29"]
    assert all(isinstance(m.get_submodule(n), nn.ReLU) for n in m.feature_layers)
    assert m.replaced_keys == ("classifier.6.weight", "classifier.6.bias") and len(m.pretrained_keys) == 30
    assert list(m.classifier._modules) == ["pool", "flatten", "0", "1", "2", "3", "4", "5", "head"]
    assert m.head.in_features == 4096 and penultimate_layer(m) == "classifier.5"


def test_weights_that_do_not_fit_are_named():
    m = FineTune(karp_config())
    state = CNN(SMALL_FAST).state_dict()
    with pytest.raises(ValueError, match="missing.*features.stem.conv.weight"):
        m.load_backbone({k: v for k, v in state.items() if k != "features.stem.conv.weight"})
    with pytest.raises(ValueError, match="unexpected.*extra"):
        m.load_backbone({**state, "extra": torch.zeros(1)})
    other = CNN(dataclasses.replace(SMALL_FAST, widths=(4, 8, 8, 32))).state_dict()
    with pytest.raises(ValueError, match="shape mismatch"):
        m.load_backbone(other)


def test_head_mode_freezes_the_backbone_in_eval_mode():
    m = FineTune(karp_config(mode="head")).train()
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["classifier.head.weight", "classifier.head.bias"]
    bns = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    assert bns and not any(b.training for b in bns) and not m.classifier.dropout.training
    assert m.head.training and m.training
    table = layer_table(m)
    assert table[-1].name == "classifier.head" and table[-1].trainable and table[-1].lr_scale == 1.0
    assert not any(r.trainable for r in table[:-1]) and all(r.lr_scale == 0.0 for r in table[:-1])
    assert sum(r.params for r in table) == sum(p.numel() for p in m.parameters())
    w = FineTune(karp_config(mode="whole", backbone_lr_scale=0.2)).train()
    assert all(p.requires_grad for p in w.parameters()) and all(b.training for b in w.modules())
    assert [r.lr_scale for r in layer_table(w)][:2] == [0.2, 0.2] and layer_table(w)[-1].lr_scale == 1.0


def test_config_round_trips_through_json_and_checks_its_fields():
    c = karp_config(n_classes=4, weights="/x/fast.safetensors", weights_sha256="ab" * 32)
    back = json.loads(json.dumps(dataclasses.asdict(c)))
    assert back["backbone_config"]["widths"] == [4, 8, 8, 16]
    m = from_config("finetune", back)
    assert m.config == c and hash(m.config) == hash(c)
    for bad, match in [(dict(mode="frozen"), "mode"), (dict(source="timm"), "source"), (dict(n_classes=1), "n_classes"),
                       (dict(arch="vit"), "karp backbone is a CNN"), (dict(backbone_lr_scale=0), "backbone_lr_scale")]:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(c, **bad)
    with pytest.raises(ValueError, match="not a torchvision weights name"):
        FineTuneConfig(source="torchvision", arch="resnet18", weights="ResNet18_Weights.NOPE")


def test_build_for_takes_the_classes_and_checks_the_input():
    class Data:
        channels, size, n_classes, mean, std = 1, (28, 28), 3, (0.1,), (0.2,)

    m = build_for("finetune", Data, preset="whole", **{"backbone_config": dataclasses.asdict(SMALL_FAST),
                                                       "arch": "fast"})
    assert m.config.n_classes == 3 and m.config.mode == "whole" and m.config.mean == (0.3,)  # the backbone's
    Data.channels = 3
    with pytest.raises(ValueError, match="takes 1x28x28 images, the data is 3x28x28"):
        build_for("finetune", Data)
    assert fit_data(FineTuneConfig(), {"n_classes": 5}) == {"n_classes": 5}


@pytest.mark.filterwarnings("ignore::UserWarning")       # Captum's notes on hooks and requires_grad
def test_every_view_takes_a_frozen_model():
    """Explain's methods and sanity check, Predict's maps and Evaluate's features need gradients
    with respect to the input only: a frozen backbone does not stop them."""
    from karp_models.introspect import attribution, sanity
    from karp_models.introspect.embeddings import penultimate_features
    from karp_models.introspect.evaluate import predict_probs

    torch.manual_seed(0)
    m = FineTune(karp_config(n_classes=3, mode="head")).eval()
    x = torch.zeros(1, 1, 28, 28)
    x[..., 6:22, 10:18] = 1.0
    methods = attribution.available(m)
    assert "Grad-CAM" in methods and "Guided Grad-CAM" in methods
    maps = attribution.attribute_all(m, x, 0, methods)
    for name, a in maps.items():
        assert a.map.shape == (28, 28) and np.isfinite(a.map).all() and np.abs(a.map).max() > 0, name
    result = sanity.cascading_randomisation(m, x, 0, ["Saliency", "Grad-CAM"])
    assert result.names[1] == "head (output)" and set(result.verdicts) == {"Saliency", "Grad-CAM"}
    assert all(not p.requires_grad for n, p in m.named_parameters() if not n.startswith("classifier.head"))
    xs = (torch.rand(5, 1, 28, 28) * 255).to(torch.uint8)
    assert predict_probs(m, xs).shape == (5, 3)
    assert penultimate_features(m, xs).shape == (5, 16)
