"""The 'Your own classes' page, part 1: a person's 2-10 classes, made in the app by upload
(several files at once), camera shots or a folder on the server in ImageFolder's layout, kept in
the session (a Draft in st.session_state) while the person visits other pages, until saved.

Files are checked as Predict checks them (preprocess.decode, cannot_use's words) when they are
added; the backbone's own recipe (data.own) reads them when a dataset is built for training.
Uploaders empty themselves once their files are in the Draft: the Draft is the one record.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from karp_models import preprocess as pp
from karp_models.data import own
from karp_models.i18n import _, ngettext
from karp_models.train.runs import classes_dir, safe_run_name
from karp_models.ui import state, style
from karp_models.ui.images import display
from karp_models.ui.predict import cannot_use

KEY = "own_draft"              # st.session_state: this person's classes
THUMB = 72                     # thumbnail side in pixels
SHOWN = 18                     # thumbnails shown per class (the count says how many there are)
MAX_BYTES = 200 * 2**20        # what one person's classes may hold in the server's memory
PER_ROW = 3                    # class cards per row at 1280x720 (2 in presentation mode's larger text)

# ---------------------------------------------------------------------------- the session's record


@dataclass
class Picture:
    name: str
    data: bytes
    thumb: np.ndarray          # (h, w, 3) uint8, longest side THUMB


@dataclass
class OwnClass:
    cid: int                   # stable id: the widgets' keys
    name: str
    pictures: list[Picture] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)   # (file, message) of the last addition


@dataclass
class Draft:
    """A person's classes while they are being made. version changes with every change (the
    key of what is built from them); gen renews the uploaders (a new one is empty)."""

    classes: list[OwnClass]
    name: str = "my-classes"
    val_fraction: float = own.VAL_FRACTION
    seed: int = 0
    next_id: int = 0
    version: int = 0
    gen: int = 0
    seen: set[str] = field(default_factory=set)      # ids of camera shots already added
    saved_as: str = ""                               # the folder it was last saved to

    @property
    def nbytes(self) -> int:
        return sum(len(p.data) for c in self.classes for p in c.pictures)

    def changed(self) -> None:
        self.version += 1
        self.saved_as = ""

    def images(self) -> dict[str, list[tuple[str, bytes]]]:
        """{class name: [(file name, bytes)]}, as data.own.build and write_folder take them."""
        return {c.name: [(p.name, p.data) for p in c.pictures] for c in self.classes}

    def find(self, cid: int) -> OwnClass:
        return next(c for c in self.classes if c.cid == cid)


def new_draft(names: Sequence[str] = ()) -> Draft:
    """A draft with these classes (default: two, 'Class 1' and 'Class 2', as Teachable Machine)."""
    d = Draft(classes=[])
    for n in names or (_("Class {n}").format(n=1), _("Class {n}").format(n=2)):
        add_class(d, n)
    return d


def add_class(d: Draft, name: str = "") -> OwnClass:
    """A new empty class at the end (at most own.MAX_CLASSES); its default name 'Class <n>'."""
    if len(d.classes) >= own.MAX_CLASSES:
        raise own.OwnDataError(_("{n} classes is the most: remove one first").format(n=own.MAX_CLASSES))
    c = OwnClass(d.next_id, name or _("Class {n}").format(n=len(d.classes) + 1))
    d.next_id += 1
    d.classes.append(c)
    d.changed()
    return c


def add_files(d: Draft, c: OwnClass, files: Sequence[tuple[str, bytes]]) -> int:
    """Check each file as Predict does and keep the readable ones in class c; the others are
    listed in c.refused with Predict's message. The number added."""
    c.refused = []
    added = 0
    for name, data in files:
        if len(c.pictures) >= own.MAX_PER_CLASS:
            c.refused.append((name, _("A class holds at most {n} images.").format(n=own.MAX_PER_CLASS)))
            continue
        if d.nbytes + len(data) > MAX_BYTES:
            c.refused.append((name, _("Your classes hold {mb} MB of images already, the most one "
                                      "person may keep here: use smaller photos.").format(mb=MAX_BYTES // 2**20)))
            continue
        try:
            rgb = pp.decode(bytes(data), name).rgb
        except Exception as e:  # noqa: BLE001 - any decoder failure refuses the file, in Predict's words
            c.refused.append((name, cannot_use(e)))
            continue
        c.pictures.append(Picture(name, bytes(data), display(rgb, side=THUMB)))
        added += 1
    if added:
        d.changed()
    return added


def replace_with_folder(d: Draft, folder: dict[str, list[tuple[str, bytes]]]) -> None:
    """The draft's classes become the folder's (data.own.read_folder), each file checked."""
    if not own.MIN_CLASSES <= len(folder) <= own.MAX_CLASSES:
        raise own.OwnDataError(_("The folder has {n} class folders; karp takes {lo} to {hi}.").format(
            n=len(folder), lo=own.MIN_CLASSES, hi=own.MAX_CLASSES))
    d.classes = []
    for name, files in folder.items():
        add_files(d, add_class(d, name), files)
    d.gen += 1


def counts(d: Draft) -> pd.DataFrame:
    """Per class: images, and how the seeded split divides them (data.own.split)."""
    labels = np.concatenate([np.full(len(c.pictures), i) for i, c in enumerate(d.classes)] + [np.zeros(0)])
    _tr, va = own.split(labels.astype(np.int64), d.val_fraction, d.seed) if len(labels) else ([], [])
    rows = []
    for i, c in enumerate(d.classes):
        n = len(c.pictures)
        v = int(np.sum(labels[va] == i)) if n >= 2 else 0
        rows.append({_("class"): c.name, _("images"): n, _("for training"): n - v if n >= 2 else n,
                     _("for validation"): v})
    return pd.DataFrame(rows)


def problems(d: Draft) -> list[str]:
    """What keeps the draft from being a dataset, in words (empty: ready)."""
    out = []
    try:
        own.check_classes([c.name for c in d.classes])
    except own.OwnDataError as e:
        out.append(str(e))
    for c in d.classes:
        if len(c.pictures) < 2:
            out.append(_("{name} has {n} images: every class needs at least 2, one to learn from "
                         "and one to check.").format(name=c.name or "?", n=len(c.pictures)))
    return out


# ---------------------------------------------------------------------------- widgets


def draft() -> Draft:
    """This session's classes (made on the first visit, kept while other pages are visited)."""
    return state.kept(KEY, new_draft)


def _seed(key: str, value) -> None:
    """A widget's value from the draft when the widget is new (Streamlit forgot it on another page)."""
    state.start_with(key, value)


def _renamed(d: Draft, cid: int) -> None:
    d.find(cid).name = st.session_state[f"own_name_{cid}"]
    d.changed()


def _uploaded(d: Draft, cid: int, key: str) -> None:
    files = st.session_state.get(key) or []
    add_files(d, d.find(cid), [(f.name, f.getvalue()) for f in files])
    d.gen += 1                                          # a fresh, empty uploader: the files are kept


def _emptied(d: Draft, cid: int) -> None:
    c = d.find(cid)
    c.pictures, c.refused = [], []
    d.changed()


def _removed(d: Draft, cid: int) -> None:
    d.classes = [c for c in d.classes if c.cid != cid]
    d.changed()


def class_card(d: Draft, c: OwnClass) -> None:
    """One class: its name, an uploader for several files, its count and thumbnails, and what
    was refused."""
    key = f"own_name_{c.cid}"
    _seed(key, c.name)
    st.text_input(_("Class name"), key=key, on_change=_renamed, args=(d, c.cid), max_chars=40)
    up = f"own_upload_{c.cid}_{d.gen}"
    st.file_uploader(_("Add images (several at once)"), accept_multiple_files=True, key=up,
                     on_change=_uploaded, args=(d, c.cid, up), label_visibility="collapsed")
    n = len(c.pictures)
    st.markdown("**" + ngettext("{n} image", "{n} images", n).format(n=n) + "**")
    if c.pictures:
        st.image([p.thumb for p in c.pictures[:SHOWN]], width=style.px(THUMB) // 2 + 14)
        if n > SHOWN:
            st.caption(_("and {n} more").format(n=n - SHOWN))
    for name, why in c.refused:
        st.error(f"{name}: {why}", icon=":material/block:")
    b1, b2 = st.columns(2)
    b1.button(_("Empty"), icon=":material/delete_sweep:", key=f"own_empty_{c.cid}", on_click=_emptied, args=(d, c.cid),
              disabled=not c.pictures, width="stretch", help=_("Remove this class's images."))
    b2.button(_("Remove"), icon=":material/close:", key=f"own_remove_{c.cid}", on_click=_removed, args=(d, c.cid),
              disabled=len(d.classes) <= own.MIN_CLASSES, width="stretch", help=_("Remove this class."))


def classes_editor(d: Draft) -> None:
    """Every class as a card, PER_ROW a row, and a button that adds one."""
    n = PER_ROW - style.presenting()
    for i in range(0, len(d.classes), n):
        cols = st.columns(n)
        for col, c in zip(cols, d.classes[i:i + n]):
            with col.container(border=True):
                class_card(d, c)
    if st.button(_("Add a class"), icon=":material/add:", key="own_add_class",
                 disabled=len(d.classes) >= own.MAX_CLASSES):
        add_class(d)
        st.rerun()


def _shot(d: Draft) -> None:
    """A new camera shot goes into the chosen class, before the page is drawn (so its card counts it)."""
    shot, cid = st.session_state.get("own_camera"), st.session_state.get("own_camera_class")
    if shot is None or shot.file_id in d.seen or cid not in {c.cid for c in d.classes}:
        return
    d.seen.add(shot.file_id)
    c = d.find(cid)
    if add_files(d, c, [(f"camera-{len(d.seen)}.jpg", shot.getvalue())]):
        st.session_state["own_camera_added"] = c.name


def camera(d: Draft) -> None:
    """A camera shot goes into the class chosen beside it (each shot once)."""
    c1, c2 = st.columns([1, 2])
    names = {c.cid: c.name for c in d.classes}
    c1.selectbox(_("Add the shot to"), list(names), format_func=names.get, key="own_camera_class")
    with c2:
        st.camera_input(_("Take a photo"), key="own_camera", on_change=_shot, args=(d,))
    added = st.session_state.pop("own_camera_added", None)
    if added is not None:
        st.success(_("Added to {name}. Clear the photo to take another.").format(name=added))


def folder(d: Draft) -> None:
    """Read a folder in ImageFolder's layout (a saved set, or any path on the server); it
    replaces the classes above."""
    saved = sorted(p for p in classes_dir().glob("*") if p.is_dir()) if classes_dir().is_dir() else []
    st.markdown(_("A folder with one subfolder per class, named after it: `animals/cat/1.jpg`, "
                  "`animals/dog/1.jpg`, ... (torchvision's ImageFolder layout). It **replaces** the "
                  "classes above."))
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    options = [str(p) for p in saved]
    with c1:
        picked = st.selectbox(_("Classes saved earlier"), [""] + options, key="own_folder_saved",
                              format_func=lambda p: Path(p).name if p else _("(type a folder below)"),
                              ) if options else ""
        path = picked or st.text_input(_("Folder on this server"), key="own_folder_path",
                                       placeholder=_("/home/teacher/animals"))  # TRANSLATORS: an example folder path
    if c2.button(_("Read the folder"), icon=":material/folder_open:", key="own_folder_read",
                 disabled=not path, width="stretch"):
        try:
            with st.spinner(_("Reading the images…")):
                replace_with_folder(d, own.read_folder(Path(path).expanduser()))
        except (own.OwnDataError, OSError) as e:
            st.error(str(e))
            return
        st.rerun()


def split_settings(d: Draft) -> None:
    """The set's name, the validation share and the split's seed; the counts they give."""
    c1, c2, c3 = st.columns([2, 2, 1])
    for key, value in (("own_set_name", d.name), ("own_val", round(d.val_fraction * 100)), ("own_seed", d.seed)):
        _seed(key, value)
    d.name = c1.text_input(_("Name of this set of classes"), key="own_set_name", max_chars=40) or "my-classes"
    val = c2.slider(_("Held out for validation (%)"), 10, 50, step=5, key="own_val",
                    help=_("Per class, this share of the images is never trained on: the accuracy "
                           "on them says how well the network learned your classes, not the "
                           "pictures themselves. At least one image a class."))
    seed = c3.number_input(_("Split seed"), 0, 9999, key="own_seed",
                           help=_("The same seed picks the same validation images."))
    if (val / 100, int(seed)) != (d.val_fraction, d.seed):
        d.val_fraction, d.seed = val / 100, int(seed)
        d.changed()
    st.dataframe(counts(d), hide_index=True, width="content")


def save_classes(d: Draft) -> None:
    """Write the classes as uploaded into the runs folder (ImageFolder's layout), to read them
    back later with the folder source."""
    if d.saved_as:
        st.caption(_("Saved in {folder}.").format(folder=d.saved_as))
        return
    if st.button(_("Save these classes on the server"), icon=":material/save:", key="own_save_classes",
                 disabled=bool(problems(d)),
                 help=_("Until then they live in this browser tab only. Saved, they can be read "
                        "back later with 'A folder on the server'.")):
        try:
            root = own.write_folder(d.images(), classes_dir() / safe_run_name(d.name))
        except (own.OwnDataError, ValueError, OSError) as e:
            st.error(str(e))
            return
        d.saved_as = str(root)
        st.rerun()
