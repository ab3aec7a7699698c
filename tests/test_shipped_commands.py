"""Every shipped weights file's train.command reproduces it as written (issue 25, goal 7): the
CLI parses it into the training configuration recorded in the file, it writes to the file's own
place in weights/, and the cheapest of them, re-run for a few steps, builds the same model."""
import dataclasses
import shlex
from pathlib import Path

import pytest

from karp_models import cli
from karp_models.models import REGISTRY
from karp_models.train.runs import WEIGHTS_DIR, shipped_weights
from karp_models.train.checkpoints import read_metadata

SHIPPED = shipped_weights()
PREFIX = ["python", "-m", "karp_models"]


def command_args(meta: dict) -> list[str]:
    words = shlex.split(meta["train"]["command"], comments=True)
    assert words[:3] == PREFIX, words
    return words[3:]


def test_weights_are_shipped():
    assert len(SHIPPED) >= 10


@pytest.mark.parametrize("path,meta", SHIPPED, ids=[p.name for p, _ in SHIPPED])
def test_the_command_parses_into_the_recorded_run(path: Path, meta: dict):
    a = cli.build_parser().parse_args(command_args(meta))
    assert (a.model, a.dataset) == (meta["model"], meta["dataset"])
    preset = a.preset or REGISTRY[a.model].default_preset
    assert preset == meta["train"].get("preset", preset)
    assert Path(a.out) == Path("weights") / path.name          # as written, it replaces this file
    built = dataclasses.asdict(cli.train_config_from_args(a))
    recorded = meta["train"]["config"]
    differ = {k: (built[k], v) for k, v in recorded.items() if k in built and built[k] != v}
    assert not differ, f"{path.name}: the command gives (command, recorded) {differ}"


def test_the_cheapest_command_rebuilds_the_same_model(tmp_path, monkeypatch):
    path, meta = min(SHIPPED, key=lambda pm: pm[1]["train"].get("time_s", float("inf")))
    args = command_args(meta)
    args[args.index("--steps") + 1] = "3"
    args[args.index("--out") + 1] = str(tmp_path / path.name)
    monkeypatch.setenv("KARP_THREADS", "1")
    assert cli.main(args) == 0
    again = read_metadata(tmp_path / path.name)
    assert again["config"] == meta["config"]                   # the model: same architecture
    assert again.get("vocab") == meta.get("vocab")
    cfg, shipped_cfg = again["train"]["config"], meta["train"]["config"]
    assert {k: v for k, v in cfg.items() if k != "steps" and k in shipped_cfg} == \
        {k: v for k, v in shipped_cfg.items() if k != "steps"}
    assert (WEIGHTS_DIR / path.name).is_file()
