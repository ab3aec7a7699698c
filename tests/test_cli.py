"""The command line end to end: datasets, train (step budget), eval reproduces, models lists."""
import pickle

import pytest

from karp_models import cli
from karp_models.train.checkpoints import read_metadata


def test_datasets_lists_every_dataset(capsys):
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("fashion-mnist", "mnist", "digits", "cifar10", "shakespeare", "names"):
        assert name in out
    assert "download cifar10" in out


@pytest.fixture
def digits_ckpt(tmp_path, capsys):
    out = tmp_path / "classic-digits.safetensors"
    code = cli.main(["train", "--model", "classic", "--dataset", "digits", "--steps", "30",
                     "--batch-size", "64", "--lr", "3e-3", "--eval-every", "0", "--out", str(out)])
    assert code == 0
    capsys.readouterr()
    return out


def test_train_writes_measured_metrics_and_eval_reproduces_them(digits_ckpt, capsys):
    meta = read_metadata(digits_ckpt)
    assert meta["model"] == "classic" and meta["dataset"] == "digits"
    assert meta["train"]["steps"] == 30
    assert len(meta["classes"]) == 10
    acc = meta["metrics"]["test_accuracy"]
    assert 0.5 < acc <= 1.0  # 30 steps on 8x8 digits learn something
    assert cli.main(["eval", "--weights", str(digits_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "match" in out and f"{acc:.2%}" in out


def test_text_model_records_validation_loss(tmp_path, capsys):
    out = tmp_path / "gpt-names.safetensors"
    assert cli.main(["train", "--model", "gpt", "--dataset", "names", "--preset", "nano",
                     "--steps", "20", "--eval-every", "0", "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert 1.0 < meta["metrics"]["val_loss"] < 3.3  # ln(27) = 3.30 untrained
    assert meta["vocab"][0] == "\n"


def test_eval_refuses_a_pickle(tmp_path, capsys):
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert cli.main(["eval", "--weights", str(bad)]) == 1
    assert "error" in capsys.readouterr().err


def test_wrong_task_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["train", "--model", "gpt", "--dataset", "digits", "--steps", "1",
                     "--out", str(tmp_path / "x.safetensors")])
    assert code == 2
    assert "text model" in capsys.readouterr().err


def test_train_from_a_teacher_records_it_and_refuses_another_dataset(digits_ckpt, tmp_path, capsys):
    out = tmp_path / "student.safetensors"
    assert cli.main(["train", "--model", "classic", "--dataset", "digits", "--steps", "10", "--eval-every", "0",
                     "--teacher", str(digits_ckpt), "--distill-temperature", "2", "--out", str(out)]) == 0
    meta = read_metadata(out)["train"]
    assert meta["teacher"]["file"] == digits_ckpt.name and len(meta["teacher"]["sha256"]) == 64
    assert meta["config"]["distill_temperature"] == 2.0 and meta["config"]["distill_alpha"] == 0.5
    code = cli.main(["train", "--model", "vit", "--dataset", "fashion-mnist", "--preset", "tiny", "--steps", "1",
                     "--teacher", str(digits_ckpt), "--out", str(tmp_path / "x.safetensors")])
    assert code == 2 and "trained on 'digits'" in capsys.readouterr().err


def test_a_captioner_trains_and_eval_reproduces_its_scores(tmp_path, capsys):
    from karp_models import data

    if not data.status("scenes").available:
        pytest.skip("the scenes are composed from fashion-mnist, which is not here")
    out = tmp_path / "cap.safetensors"
    assert cli.main(["train", "--model", "caption-attention", "--dataset", "scenes", "--preset", "tiny",
                     "--steps", "8", "--batch-size", "32", "--eval-every", "0", "--out", str(out)]) == 0
    meta = read_metadata(out)
    m = meta["metrics"]
    assert meta["model"] == "caption-attention" and meta["language"] == "en" and len(meta["vocab"]) == 42
    assert {"test_loss", "test_bleu4", "test_cider", "test_accuracy", "test_items_match",
            "test_novel_accuracy", "test_attention_on_item", "test_attention_chance"} <= set(m)
    assert 0 < m["test_loss"] < 3.8                                   # ln(42) = 3.74 untrained
    capsys.readouterr()
    assert cli.main(["eval", "--weights", str(out)]) == 0
    text = capsys.readouterr().out
    assert "match" in text and f"test bleu4 {m['test_bleu4']:.4g}" in text
    assert cli.main(["train", "--model", "caption-lstm", "--dataset", "fashion-mnist", "--steps", "1",
                     "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "scenes model" in capsys.readouterr().err
