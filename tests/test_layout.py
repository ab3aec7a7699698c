"""The house's import directions (ARCHITECTURE.md): data -> models -> train; pages call ui/ and
introspect/; nothing below ui/ imports Streamlit; nothing imports the CLI; pages do no torch
maths. Read from the source (every import statement, including those inside functions)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "karp_models"

# the karp_models parts each part may import (besides itself and i18n, the leaf every part's
# words go through); ui may import all but the CLI
ALLOWED = {
    "device": set(),
    "data": {"preprocess", "rl"},   # a person's own images are read as Predict reads them; environments
    "rl": set(),                    # environments, returns, replay: pure NumPy / torch / Gymnasium
    "models": set(),
    "preprocess": set(),
    "introspect": {"models", "device"},
    "imagenet": {"introspect", "models", "device"},
    "train": {"data", "models", "introspect", "device", "imagenet", "rl",  # fine-tuning's pretrained weights
              "rayclient"},                # joining a Ray cluster (train/cluster.py)
    "rayclient": {"train"},         # Ray only; the queue actor's shell makes train's Queue in the actor
    "compress": {"data", "models", "introspect", "train", "device"},   # fine-tunes through the Trainer
    "ui": {"data", "models", "introspect", "train", "device", "preprocess", "imagenet", "compress", "lessons",
           "rl"},
    "lessons": set(),               # lesson files and a class's answers: plain data
    "cli": {"data", "models", "train", "device"},
    "__main__": {"cli"},
    "__init__": set(),
    "i18n": set(),
}
TORCH_MATHS = ("torch", "torchvision", "captum", "cv2")


def imports(path: Path) -> list[str]:
    """Every module name `path` imports, absolute."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            if node.module == "karp_models":  # from karp_models import data
                out += [f"karp_models.{a.name}" for a in node.names]
    return out


def part(path: Path) -> str:
    rel = path.relative_to(PKG).parts
    return rel[0].removesuffix(".py")


PACKAGE_FILES = sorted(PKG.rglob("*.py"))
APP_FILES = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py")])


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_part_imports_only_what_it_may(path):
    me = part(path)
    used = {m.split(".")[1] for m in imports(path) if m.startswith("karp_models.")} - {me, "i18n"}
    assert used <= ALLOWED[me], f"{path.relative_to(ROOT)} imports {sorted(used - ALLOWED[me])}"


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_streamlit_only_in_ui(path):
    if part(path) == "ui":
        return
    st = [m for m in imports(path) if m.split(".")[0] in ("streamlit", "streamlit_drawable_canvas")]
    assert not st, f"{path.relative_to(ROOT)} imports {st}: only karp_models/ui may"


def test_nothing_imports_the_cli():
    users = [p.relative_to(ROOT) for p in [*PACKAGE_FILES, *APP_FILES, *(ROOT / "bench").glob("*.py")]
             if p.name != "__main__.py" and "karp_models.cli" in imports(p)]
    assert not users, f"the CLI is a leaf; imported by {users}"


@pytest.mark.parametrize("path", APP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_do_no_torch_maths(path):
    maths = [m for m in imports(path) if m.split(".")[0] in TORCH_MATHS]
    assert not maths, f"{path.relative_to(ROOT)} imports {maths}: call karp_models/ui or introspect"


def test_the_rules_know_every_part():
    assert {part(p) for p in PACKAGE_FILES} <= set(ALLOWED)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from karp_models.cli import main\n    import streamlit as st\n")
    assert imports(f) == ["karp_models.cli", "streamlit"]
