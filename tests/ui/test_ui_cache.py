"""ui.cache: one object per key, built once, bounded LRU, and safe under concurrent sessions."""
import threading

import numpy as np
import plotly.graph_objects as go
import pytest

from karp_models import i18n
from karp_models.ui import cache
from karp_models.ui.cache import SharedLRU


def test_same_key_gives_the_same_object_built_once():
    lru, calls = SharedLRU(4), []

    def build():
        calls.append(1)
        return go.Figure()

    a = lru.get_or_build(("fig", 1), build)
    b = lru.get_or_build(("fig", 1), build)
    c = lru.get_or_build(("fig", 2), build)
    assert a is b and a is not c
    assert len(calls) == 2 == lru.builds


def test_bounded_least_recently_used_goes_first():
    lru = SharedLRU(3)
    for k in range(3):
        lru.put(k, str(k))
    assert lru.get(0) == "0"                # 0 is now the most recently used
    lru.put(3, "3")
    lru.get_or_build(4, lambda: "4")
    assert len(lru) == 3
    assert 1 not in lru and 2 not in lru    # the two least recently used went
    assert [lru.get(k) for k in (0, 3, 4)] == ["0", "3", "4"]
    assert lru.get(1, "gone") == "gone"


def test_a_failed_build_stores_nothing_and_is_retried():
    lru = SharedLRU(2)

    def boom():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        lru.get_or_build("k", boom)
    assert "k" not in lru and lru.builds == 0
    assert lru.get_or_build("k", lambda: 5) == 5


def test_concurrent_calls_for_one_key_build_once_and_share_the_result():
    lru, calls, release = SharedLRU(8), [], threading.Event()

    def build():
        calls.append(1)
        release.wait(5)                     # every other thread arrives while this one builds
        return object()

    out = [None] * 16
    def worker(i):
        out[i] = lru.get_or_build(("same",), build)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    release.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert all(o is out[0] for o in out) and out[0] is not None


def test_different_keys_build_in_parallel():
    """A slow build (a t-SNE) must not hold up another key's build (a figure)."""
    lru = SharedLRU(8)
    a_started, b_started = threading.Event(), threading.Event()

    def build_a():
        a_started.set()
        return b_started.wait(5)            # True only if b could start while a was building

    def build_b():
        a_started.wait(5)
        b_started.set()
        return True

    res = {}
    ta = threading.Thread(target=lambda: res.__setitem__("a", lru.get_or_build("a", build_a)))
    tb = threading.Thread(target=lambda: res.__setitem__("b", lru.get_or_build("b", build_b)))
    for t in (ta, tb):
        t.start()
    for t in (ta, tb):
        t.join(10)
    assert res == {"a": True, "b": True}


def test_many_threads_many_keys_stay_within_the_bound():
    lru, errors = SharedLRU(5), []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(300):
                k = int(rng.integers(20))
                assert lru.get_or_build(k, lambda: ("v", k)) == ("v", k)
                assert len(lru) <= 5
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(lru) == 5


def test_figure_and_result_use_their_own_pools():
    key = ("test_ui_cache", object())
    fig = cache.figure(key, go.Figure)
    assert cache.figure(key, lambda: pytest.fail("built twice")) is fig
    assert ("en", *key) in cache.FIGURES and ("en", *key) not in cache.LIVE
    live = cache.figure(key, go.Figure, live=True)
    assert live is not fig and ("en", *key) in cache.LIVE
    assert cache.result(key, lambda: 42) == 42 and cache.RESULTS.get(key) == 42


def test_a_figure_is_built_once_per_language():
    """Its words are in one language: the same key in Chinese is another figure."""
    key = ("test_ui_cache_language", object())
    en = cache.figure(key, go.Figure)
    with i18n.using("zh"):
        zh = cache.figure(key, go.Figure)
        assert cache.figure(key, lambda: pytest.fail("built twice")) is zh
    assert zh is not en and cache.figure(key, lambda: pytest.fail("built twice")) is en


def test_image_key_follows_bytes_and_shape():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert cache.image_key(x) == cache.image_key(x.copy()) and len(cache.image_key(x)) == 16
    assert cache.image_key(x) != cache.image_key(x.reshape(4, 3))      # same bytes, other shape
    assert cache.image_key(x) != cache.image_key(x + 1)
    assert cache.image_key(x.T) == cache.image_key(np.ascontiguousarray(x.T))


def test_bounded_by_bytes_least_recently_used_goes_first():
    lru = SharedLRU(100, max_bytes=1000, sizeof=len)
    for k in range(4):
        lru.put(k, b"x" * 300)
    assert len(lru) == 3 and lru.nbytes == 900 and 0 not in lru      # 4 x 300 > 1000: the oldest went
    lru.get(1)
    lru.put("big", b"x" * 500)                                         # 1 is kept: 2 and 3 make room
    assert 1 in lru and 2 not in lru and 3 not in lru and lru.nbytes == 800
    assert lru.get_or_build("huge", lambda: b"x" * 2000) == b"x" * 2000   # answered, never kept
    assert "huge" not in lru and lru.nbytes == 800
    for k in range(1000):                                             # a long class never grows it
        lru.get_or_build(("img", k), lambda: b"x" * 100)
        assert lru.nbytes <= 1000
    assert lru.nbytes == sum(map(len, (lru.get(k) for k in list(lru._data)))) == 1000
    lru.clear()
    assert len(lru) == 0 and lru.nbytes == 0
    with pytest.raises(ValueError):
        SharedLRU(4, max_bytes=10)
