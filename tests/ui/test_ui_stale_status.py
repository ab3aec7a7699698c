"""A run's status while a Ray cluster does not answer (issue 26 QA): Train showed the last known
state as if current ("Running ... ETA"); it now says it is the last known state, in the page's
language."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _page(stale: bool, lang: str) -> None:
    from karp_models.i18n import using
    from karp_models.train.jobstatus import JobStatus
    from karp_models.ui.training import render_status

    st_ = JobStatus(job_id="j", session_id="s", label="#1", spec=None, state="running", records=(),
                    step=2950, total_steps=6000, progress=0.49, eta_s=63.0, throughput=40.0,
                    unit="samples", queue_position=None, stop_requested=False, error=None,
                    error_detail=None, preview=None, params=None, device="cpu", created=0.0, saved=(),
                    stale=stale)
    with using(lang):
        render_status(st_)


@pytest.mark.parametrize("lang, words", [("en", "Last known state"), ("zh", "最后已知的状态")])
def test_a_last_known_state_says_so(lang, words):
    at = AppTest.from_function(_page, args=(True, lang)).run(timeout=60)
    assert not at.exception
    assert any(words in w.value for w in at.warning)


def test_a_current_state_has_no_such_warning():
    at = AppTest.from_function(_page, args=(False, "en")).run(timeout=60)
    assert not at.exception and not at.warning
