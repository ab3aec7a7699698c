"""The training time-lapse: which steps are kept, their exact weights, saved and reloaded with
the run, and the run file still opening as a model."""
import pytest
import torch
from torch import nn

from karp_models.train import timelapse as tl
from karp_models.train.jobs import JobManager
from karp_models.train.runs import RunSpec
from karp_models.train.trainer import TrainConfig


def _model(value: float) -> nn.Module:
    m = nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def test_steps_stay_evenly_spaced_and_the_last_is_kept():
    lapse = tl.TimeLapse(every=5, max_items=4)
    for step in range(0, 101, 5):
        lapse.offer(step, _model(step))
    # 21 previews: the stride doubled 5 -> 10 -> 20 -> 40 to keep <= 3 on the grid
    assert lapse.stride == 40 and lapse.steps == [0, 40, 80]
    assert lapse.offer(103, _model(103), last=True) and lapse.steps == [0, 40, 80, 103]
    assert [float(sd["weight"][0, 0]) for _s, sd in lapse.items] == [0, 40, 80, 103]
    lapse.offer(110, _model(110))               # training went on: 103 was not the last after all
    assert lapse.steps == [0, 40, 80]
    assert not lapse.offer(80, _model(0))       # a step already kept is not replaced


def test_snapshots_are_copies_not_views():
    m = _model(1.0)
    lapse = tl.TimeLapse(every=1)
    lapse.offer(0, m)
    with torch.no_grad():
        m.weight.fill_(2.0)
    assert float(lapse.items[0][1]["weight"][0, 0]) == 1.0


def test_capacity_follows_the_byte_budget():
    m = nn.Linear(100, 100)                     # 10,100 numbers, 40,400 bytes
    assert tl.capacity(m) == tl.MAX_ITEMS
    assert tl.capacity(m, max_bytes=5 * 40_400) == 5
    assert tl.capacity(m, max_bytes=40_400) == 0  # fewer than 2 is no time-lapse
    with pytest.raises(ValueError):
        tl.TimeLapse(every=0)


def test_an_image_run_keeps_saves_and_reloads_exact_snapshots(tmp_path):
    from karp_models.train.checkpoints import load_checkpoint, read_metadata

    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False)
    threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(steps=70, batch_size=32, eval_every=10, eval_batches=1)
        jid = m.submit("s1", RunSpec(model="fast", dataset="digits", config=cfg, preview_every=5))
        st = m.wait(jid, timeout=60)
        assert st.state == "done", st.error
        path = m.save(jid, "lapse")
        job = m._jobs[jid]
        # previews every 5 steps: 15 on the grid is more than 11, so every 10th step
        assert job.timelapse.steps == [0, 10, 20, 30, 40, 50, 60, 70]
        kept = job.timelapse.items
    finally:
        m.shutdown()
        torch.set_num_threads(threads)
    assert read_metadata(path)["timelapse"] == {"steps": [0, 10, 20, 30, 40, 50, 60, 70]}
    loaded = tl.load(path)
    assert [s for s, _ in loaded] == [0, 10, 20, 30, 40, 50, 60, 70]
    for (_s, a), (_t, b) in zip(kept, loaded):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    final = load_checkpoint(path).model            # the run still opens, strictly, as a model
    assert all(torch.equal(v, loaded[-1][1][k]) for k, v in final.state_dict().items())
    first_conv = next(k for k in loaded[0][1] if k.endswith("weight"))
    assert not torch.equal(loaded[0][1][first_conv], loaded[-1][1][first_conv])  # it did train


def test_a_run_without_a_time_lapse_loads_none(tmp_path):
    from karp_models.models.registry import build
    from karp_models.train.checkpoints import save_checkpoint

    p = save_checkpoint(tmp_path / "m.safetensors", build("fast"), model_name="fast",
                        meta={"dataset": "digits"})
    assert tl.load(p) == []


def test_a_forged_time_lapse_is_a_checkpoint_error(tmp_path):
    from karp_models.models.registry import build
    from karp_models.train.checkpoints import CheckpointError, checkpoint_parts, write_checkpoint

    tensors, meta = checkpoint_parts(build("fast"), model_name="fast", meta={"timelapse": {"steps": [0]}})
    tensors["timelapse/zero/w"] = torch.zeros(2)
    p = write_checkpoint(tmp_path / "forged.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="time-lapse that cannot be read"):
        tl.load(p)
