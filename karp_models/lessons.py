"""Guided lessons as data, and a class's anonymous answers.

A lesson is one YAML file per language, `lessons/<lang>/<id>.yaml` at the repository's top (the same
file name in every language): a title, a summary, and steps. A step has a short Markdown text, the
page it opens (a file of pages/, without .py) in a state (widget key -> value, exactly what the page's
link carries: see ui/state.py) and may ask a question that the live model grades. Question kinds:

- choice:    `options` and the index of the `answer` (a concept question, graded by the file)
- next_char: `model` (a shipped text model's name) and a `text`; which character comes next?
- gradcam:   `model` (a shipped image model) and a test image `index`; where will Grad-CAM look?
- head:      `model` (a shipped GPT) and a `text` with quotes; which head matters most for closing them?
- lr:        a learning rate `lr` (and `steps`); will the loss go down? A short run answers.
- init_loss: a registry `model` and `dataset` and numeric `options`; what loss does it start at?

The format follows Transformer Explainer's and TensorFlow Playground's guided tours: text beside the live
tool. `ClassAnswers` gathers several browsers' answers to one step under a class code, counts only.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"
LANGS = ("en", "zh")
KINDS = {"choice": ("options", "answer"), "next_char": ("model", "text"), "gradcam": ("model", "index"),
         "head": ("model", "text"), "lr": ("lr",), "init_loss": ("model", "dataset", "options")}


class LessonError(ValueError):
    """A lesson file that cannot be used, with the file and what is wrong."""


@dataclass(frozen=True)
class Question:
    """What a step asks. kind: one of KINDS; prompt: the question in the lesson's language; params: the
    kind's fields (model, text, index, lr, steps, options, answer); explain: what to say after grading."""
    kind: str
    prompt: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    explain: str = ""


@dataclass(frozen=True)
class Step:
    text: str
    page: str                                  # pages/<page>.py
    state: dict[str, Any] = field(default_factory=dict, hash=False)   # widget key -> value in the link
    question: Question | None = None

    def query(self) -> dict[str, str]:
        """The step's state as a link's query parameters (booleans as Streamlit writes them)."""
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in self.state.items()}


@dataclass(frozen=True)
class Lesson:
    id: str
    lang: str
    title: str
    summary: str
    order: int
    steps: tuple[Step, ...]


def _question(d: Any, where: str) -> Question | None:
    if d is None:
        return None
    if not isinstance(d, dict) or d.get("kind") not in KINDS:
        raise LessonError(f"{where}: a question needs a kind, one of {sorted(KINDS)}")
    missing = [k for k in KINDS[d["kind"]] if k not in d]
    if missing or not d.get("prompt"):
        raise LessonError(f"{where}: a {d['kind']} question needs prompt and {', '.join(KINDS[d['kind']])}")
    if "options" in d and (not isinstance(d["options"], list) or len(d["options"]) < 2):
        raise LessonError(f"{where}: options must be a list of at least two")
    if d["kind"] == "choice" and not 0 <= int(d["answer"]) < len(d["options"]):
        raise LessonError(f"{where}: answer must index the options")
    params = {k: v for k, v in d.items() if k not in ("kind", "prompt", "explain")}
    return Question(d["kind"], str(d["prompt"]), params, str(d.get("explain", "")))


def read(path: str | Path) -> Lesson:
    """One lesson file. Raises LessonError naming the file and what is wrong (bad YAML, no steps, a
    step without text or page, an unusable question)."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise LessonError(f"{path}: {e}") from e
    if not isinstance(d, dict) or not d.get("title") or not isinstance(d.get("steps"), list) or not d["steps"]:
        raise LessonError(f"{path}: a lesson needs a title and a list of steps")
    steps = []
    for i, s in enumerate(d["steps"], 1):
        where = f"{path} step {i}"
        if not isinstance(s, dict) or not s.get("text") or not s.get("page"):
            raise LessonError(f"{where}: a step needs text and page")
        state = s.get("state") or {}
        if not isinstance(state, dict):
            raise LessonError(f"{where}: state must map widget keys to values")
        steps.append(Step(str(s["text"]), str(s["page"]), dict(state), _question(s.get("question"), where)))
    return Lesson(path.stem, path.parent.name, str(d["title"]), str(d.get("summary", "")),
                  int(d.get("order", 99)), tuple(steps))


def load_all(lang: str, root: str | Path = LESSONS_DIR) -> list[Lesson]:
    """Every lesson in `lang` (falling back to English for a lesson not translated), in their order."""
    root = Path(root)
    found = {p.stem: p for p in sorted((root / "en").glob("*.yaml"))}
    found.update({p.stem: p for p in sorted((root / lang).glob("*.yaml"))} if lang != "en" else {})
    return sorted((read(p) for p in found.values()), key=lambda les: (les.order, les.id))

# ---------------------------------------------------------------------------- a class's answers


class ClassAnswers:
    """Answers of many browsers, gathered per (class code, lesson, step): each voter (an anonymous random
    token) counts once, with its latest answer; only counts leave this object, never who answered what.
    Thread-safe; bounded (the oldest class is dropped past max_classes, a step takes at most max_voters)."""

    def __init__(self, max_classes: int = 64, max_voters: int = 500) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[tuple[str, int], dict[str, str]]] = {}
        self.max_classes, self.max_voters = max_classes, max_voters

    def record(self, code: str, lesson: str, step: int, voter: str, answer: str) -> bool:
        """Keep `voter`'s answer; False when the step is full (its answer is not counted)."""
        code = code.strip().upper()
        with self._lock:
            if code not in self._data and len(self._data) >= self.max_classes:
                self._data.pop(next(iter(self._data)))
            votes = self._data.setdefault(code, {}).setdefault((lesson, step), {})
            if voter not in votes and len(votes) >= self.max_voters:
                return False
            votes[voter] = str(answer)
            return True

    def tally(self, code: str, lesson: str, step: int) -> Counter:
        """How many gave each answer."""
        with self._lock:
            return Counter(self._data.get(code.strip().upper(), {}).get((lesson, step), {}).values())

    def clear(self, code: str, lesson: str, step: int) -> None:
        with self._lock:
            self._data.get(code.strip().upper(), {}).pop((lesson, step), None)
