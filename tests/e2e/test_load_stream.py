"""The classroom load test's browserless client (bench/stream_client.py) against a real server:
one student opens Home, predicts, explains and trains a few steps over Streamlit's websocket,
with no exception, disconnect or timeout. Guards the bench against protocol changes."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import actions as act  # noqa: E402
import bench_load  # noqa: E402


def test_one_student_over_the_websocket():
    res = bench_load.measure(1, 1, budget_s=120, steps=20, warmup=False, port=act.free_port())
    assert res["errors"] == [], res["errors"]
    assert res["sessions_finished"] == 1
    for action in ("home", "open_predict", "predict_test_image", "predict_other_image",
                   "explain_open", "explain_other_image", "train_start"):
        assert len(res["lat"].get(action, [])) == 1, action
    assert res["server_started"] == 1 and res["server_ended"] == 1
    assert res["server_most_running"] <= 1
    assert max(res["rss"]) > 0
