"""Shared widgets: the device badge in the sidebar, and where training jobs run (this server,
or a Ray cluster with its resources, train/cluster.py)."""
from __future__ import annotations

import streamlit as st

from karp_models import device as dev
from karp_models.i18n import _, language, ngettext
from karp_models.train import cluster


@st.cache_resource
def _device_text(lang: str) -> str:
    """`lang`: part of the cache key (the words are made in the session's language)."""
    dev.set_threads(for_app=True)
    return dev.describe_device(dev.pick_device())


def device_text() -> str:
    """Where models run, in words, in the session's language."""
    return _device_text(language())


def device_badge() -> None:
    """Show where models run, in words, at the bottom of the sidebar."""
    st.sidebar.caption(_("Runs on **{device}**").format(device=device_text()))


@st.cache_data(ttl=30, show_spinner=False)
def _cluster_resources() -> dict[str, float] | None:

    return cluster.describe()


def cluster_text() -> str | None:
    """Where training jobs run when this server's queue is a Ray cluster's: its machines, CPUs
    and GPUs (asked at most every 30 s); or what is wrong; None when jobs run on this server."""
    kind, problem = cluster.backend()
    if problem:
        return problem
    if kind != "ray":
        return None
    res = _cluster_resources()
    if res is None:
        return _("The training cluster does not answer; runs cannot start or stop until it is "
                 "back. Runs already saved are safe.")
    n = int(res["nodes"])
    return ngettext("Training runs on a Ray cluster of {n} machine with {cpus} CPUs and {gpus} "
                    "GPUs in all.", "Training runs on a Ray cluster of {n} machines with {cpus} "
                    "CPUs and {gpus} GPUs in all.", n).format(n=n, cpus=f"{res['CPU']:g}",
                                                             gpus=f"{res['GPU']:g}")


def device_line() -> str:
    """The Home page's device line: this server's device, and the training cluster's
    resources when training runs on one."""
    more = cluster_text()
    return device_text() + (f"\n\n{more}" if more else "")


def cluster_notice() -> None:
    """A warning when the training cluster cannot be used (nothing otherwise)."""
    kind, problem = cluster.backend()
    if problem:
        st.warning(problem, icon=":material/cloud_off:")
