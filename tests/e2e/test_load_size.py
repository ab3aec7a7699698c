"""The classroom load test's size: a school's lab of 60 sessions (10 training) runs as asked;
more than MAX_SESSIONS is cut to it, and never more trainers than sessions."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load  # noqa: E402


def test_a_lab_of_sixty_runs_as_asked_and_the_bound_holds():
    assert bench_load.class_size(60, 10) == (60, 10)
    assert bench_load.class_size(1000, 10) == (bench_load.MAX_SESSIONS, 10)
    assert 60 <= bench_load.MAX_SESSIONS <= 100
    assert bench_load.class_size(3, 9) == (3, 3)
    assert bench_load.class_size(0, -1) == (1, 0)
