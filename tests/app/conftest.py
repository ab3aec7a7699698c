"""AppTests write what a person's work leaves on the server (autosaves of runs, the last upload)
into a temporary runs folder, never into the developer's ./runs; a test that needs its own sets
KARP_RUNS itself (monkeypatch), which wins for that test."""
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _runs_folder(tmp_path_factory):
    if os.environ.get("KARP_RUNS"):
        yield
        return
    os.environ["KARP_RUNS"] = str(tmp_path_factory.mktemp("runs"))
    try:
        yield
    finally:
        os.environ.pop("KARP_RUNS", None)
