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


@pytest.mark.parametrize("args,words", [
    (["--steps", "-5"], "--steps must be at least 1"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--steps", "2", "--config", "{bad"], "--config is not JSON"),
    (["--steps", "2", "--lr", "-1"], "lr must be positive"),
])
def test_bad_train_arguments_are_errors_before_any_training(tmp_path, capsys, args, words):
    out = tmp_path / "x.safetensors"
    assert cli.main(["train", "--model", "classic", "--dataset", "digits", *args, "--out", str(out)]) == 2
    assert words in capsys.readouterr().err and not out.exists()


def test_out_must_be_a_file_and_resume_must_match(digits_ckpt, tmp_path, capsys):
    assert cli.main(["train", "--model", "classic", "--dataset", "digits", "--steps", "2",
                     "--out", str(tmp_path)]) == 2
    assert "--out must name a .safetensors file" in capsys.readouterr().err
    code = cli.main(["train", "--model", "classic", "--dataset", "mnist", "--steps", "60",
                     "--resume", str(digits_ckpt), "--out", str(tmp_path / "y.safetensors")])
    assert code == 2 and "trained on 'digits'" in capsys.readouterr().err  # QA: silently relabelled


@pytest.mark.parametrize("model", ["dcgan", "cvae"])
def test_a_generator_trains_and_eval_reproduces_its_frechet_distance(model, digits_ckpt, tmp_path,
                                                                      capsys, monkeypatch):
    from karp_models.train.tasks import generative

    # the digits classifier trained above judges the samples, as fast-fashion-mnist does Fashion-MNIST's
    monkeypatch.setattr(generative, "WEIGHTS", digits_ckpt.parent)
    monkeypatch.setattr(generative, "JUDGES", {"digits": digits_ckpt.name})
    out = tmp_path / f"{model}-digits.safetensors"
    assert cli.main(["train", "--model", model, "--dataset", "digits", "--preset", "tiny", "--steps", "20",
                     "--batch-size", "32", "--lr", "1e-3", "--eval-every", "10", "--grad-clip", "0",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    meta = read_metadata(out)
    m = meta["metrics"]
    assert {"test_loss", "test_fd", "test_coverage", "test_confidence", "test_real_fd",
            "test_real_coverage", "test_real_confidence"} <= set(m)
    assert m["test_real_fd"] < m["test_fd"]                              # 20 steps: far from real digits
    assert meta["judge"]["file"] == digits_ckpt.name and meta["latent"] > 0
    assert f"test fd {m['test_fd']:.4g}" in printed
    assert cli.main(["eval", "--weights", str(out)]) == 0
    assert "match" in capsys.readouterr().out


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


def test_adversarial_training_round_trips_through_the_cli_and_the_job_queue(tmp_path, capsys, monkeypatch):
    """--adv-eps & co. reach the trainer from the command line, the command saved in the file and
    the app's command give the same TrainConfig, the job queue passes it on unread, and eval
    checks the robust accuracy the file records (and notices a forged one)."""
    import dataclasses
    import json
    import shlex

    from karp_models.train import runs
    from karp_models.train.checkpoints import load_checkpoint, save_checkpoint
    from karp_models.train.jobs import JobManager
    from karp_models.train.trainer import TrainConfig

    import sys

    out = tmp_path / "robust-digits.safetensors"
    args = ["train", "--model", "classic", "--dataset", "digits", "--steps", "12", "--batch-size", "32",
            "--adv-eps", "0.1", "--adv-steps", "2", "--shift", "0", "--no-flip", "--eval-every", "0",
            "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["karp_models", *args])          # the command the file records
    assert cli.main(args) == 0
    assert "robust acc" in capsys.readouterr().out
    meta = read_metadata(out)
    cfg = TrainConfig(**meta["train"]["config"])
    assert (cfg.adv_eps, cfg.adv_steps, cfg.shift, cfg.flip) == (0.1, 2, 0, False)
    assert meta["robust"] == {"attack": "PGD", "norm": "Linf", "epsilon": 0.1, "steps": runs.ROBUST_EVAL_STEPS,
                              "step_size": pytest.approx(2.5 * 0.1 / runs.ROBUST_EVAL_STEPS),
                              "items": runs.ROBUST_EVAL_ITEMS}
    assert 0 <= meta["metrics"]["test_robust_accuracy"] <= meta["metrics"]["test_accuracy"]

    def parsed(command: str) -> TrainConfig:
        words = shlex.split(command.split("  #")[0])
        words = words[words.index("train"):]
        words += [] if "--out" in words else ["--out", "x.safetensors"]
        return cli.train_config_from_args(cli.build_parser().parse_args(words))

    assert parsed(meta["train"]["command"]) == cfg                      # the file's own command
    spec = runs.RunSpec(model="classic", dataset="digits", config=cfg)
    assert parsed(runs.cli_command(spec)) == cfg                        # the app's command for it
    assert runs.spec_from_meta(json.loads(json.dumps(runs.spec_meta(spec)))).config == cfg  # an autosave

    seen = []

    def builder(s):                                                   # what the queue hands a builder
        seen.append(s)
        return runs.build_run(dataclasses.replace(s, config=dataclasses.replace(s.config, steps=1)))
    m = JobManager(builder=builder, runs_dir=tmp_path / "runs", set_threads=False)
    try:
        st = m.wait(m.submit("s1", spec), timeout=60)
        assert st.state == "done", st.error
        assert seen[0].config == cfg and "PGD ε 0.1" in st.label and "no shift or flip" in st.label
    finally:
        m.shutdown()

    assert cli.main(["eval", "--weights", str(out)]) == 0
    text = capsys.readouterr().out
    assert "match" in text and "PGD, L-inf epsilon 0.1, 10 steps" in text
    ck = load_checkpoint(out)
    forged = dict(ck.meta, metrics={**ck.meta["metrics"],
                                    "test_robust_accuracy": ck.meta["metrics"]["test_robust_accuracy"] + 0.05})
    save_checkpoint(tmp_path / "forged.safetensors", ck.model, model_name="classic", meta=forged)
    assert cli.main(["eval", "--weights", str(tmp_path / "forged.safetensors")]) == 3
    assert "MISMATCH" in capsys.readouterr().out


def test_eval_measures_any_image_model_under_attack(digits_ckpt, capsys):
    assert cli.main(["eval", "--weights", str(digits_ckpt), "--robust-eps", "0.05", "--robust-steps", "5"]) == 0
    text = capsys.readouterr().out
    assert "PGD, L-inf epsilon 0.05, 5 steps of 0.025" in text and "robust acc" in text and "match" in text


def test_the_shipped_robust_model_reproduces_its_clean_and_robust_accuracy(capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "weights" / "fast-robust-fashion-mnist.safetensors"
    meta = read_metadata(path)
    assert {"test_accuracy", "test_robust_accuracy"} <= set(meta["metrics"]) and meta["robust"]["epsilon"] > 0
    assert cli.main(["eval", "--weights", str(path)]) == 0
    assert "  match" in capsys.readouterr().out
