"""Every user-visible string goes through _() (ARCHITECTURE.md, convention 13), read from the
source: a string literal that reaches a Streamlit element or widget (its label, body, help,
options' words), a figure's title, axis, legend, hover or annotation, or a table's header
without a translation function fails (a CSV download's columns stay English: functions *_csv), as does a user-facing exception raised below ui/ with a
bare message. Keys, formats, CSS and HTML skeletons and symbols are not words and pass.

Also: a scope that calls _() must not bind the name _ (`for _, x in ...`, `a, _ = ...`): that
shadows the translation function and fails only when the line runs (it did, twice)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_FILES = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "karp_models" / "ui").rglob("*.py")])
ALL_FILES = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "karp_models").rglob("*.py")])

TRANSLATE = {"_", "ngettext", "pgettext"}
# Streamlit calls whose first argument is shown (a label or a body), and their shown keywords
ST_SHOWN = {"title", "header", "subheader", "markdown", "caption", "write", "info", "warning", "error",
            "success", "toast", "button", "download_button", "page_link", "form_submit_button",
            "link_button", "checkbox", "toggle", "radio", "selectbox", "multiselect", "select_slider",
            "slider", "number_input", "text_input", "text_area", "file_uploader", "camera_input",
            "segmented_control", "pills", "metric", "expander", "popover", "tabs", "spinner",
            "ProgressColumn", "TextColumn", "NumberColumn"}
ST_KEYWORDS = {"label", "help", "placeholder", "text", "caption", "delta", "body"}
# figure builders (plotly, matplotlib, ui.style.layout) and their shown keywords
FIG_CALLS = {"layout", "update_layout", "update_xaxes", "update_yaxes", "add_annotation", "add_hline",
             "add_vline", "make_subplots", "Scatter", "Scattergl", "Bar", "Heatmap", "Image", "Figure",
             "add_scatter", "add_trace", "set_title", "suptitle", "colorbar", "set_xlabel", "set_ylabel"}
FIG_KEYWORDS = {"title", "title_text", "text", "name", "hovertemplate", "hovertext", "subplot_titles",
                "row_titles", "column_titles", "annotation_text", "xaxis_title", "yaxis_title", "label",
                "colorbar"}
# exceptions whose message a page shows as it is (below ui/, raised with _())
SHOWN_ERRORS = {"DatasetMissing", "ImageError", "CheckpointError", "QueueFull", "WeightsUnavailable"}
SHOWN_ERROR_FILES = {"karp_models/train/jobs.py"}     # its ValueErrors reach the Train page too

WORD = re.compile(r"[A-Za-z]{2,}")


def words(text: str) -> bool:
    """Does a literal hold words a person reads (not a key, a format, CSS or an HTML tag)?"""
    text = re.sub(r"<[^>]*>", " ", text)                      # HTML tags and their attributes
    text = re.sub(r"\{[^{}]*\}|%\{[^{}]*\}|%[-+ #0-9.]*[a-zA-Z]", " ", text)  # format fields
    text = re.sub(r"[.:]material/\w+[:]?|:material/\w+:", " ", text)        # icons
    return bool(WORD.search(text))


def bad_literals(node: ast.AST) -> list[ast.AST]:
    """The untranslated literals with words in an expression that is shown to a person."""
    if isinstance(node, ast.Constant):
        return [node] if isinstance(node.value, str) and words(node.value) else []
    if isinstance(node, ast.JoinedStr):                                     # f"...": its text parts
        return [node] if any(isinstance(v, ast.Constant) and words(v.value) for v in node.values) else []
    if isinstance(node, ast.BinOp):
        return bad_literals(node.left) + bad_literals(node.right)
    if isinstance(node, ast.IfExp):
        return bad_literals(node.body) + bad_literals(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [b for e in node.elts for b in bad_literals(e)]
    if isinstance(node, ast.Dict):                                          # dict(title=...) style
        return [b for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and k.value in FIG_KEYWORDS for b in bad_literals(v)]
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id in TRANSLATE:
            return []
        if isinstance(f, ast.Attribute) and f.attr == "format":              # "...".format(): the text
            return bad_literals(f.value)
        if isinstance(f, ast.Name) and f.id == "dict":
            return [b for kw in node.keywords if kw.arg in FIG_KEYWORDS for b in bad_literals(kw.value)]
    return []


def name_of(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def shown_expressions(call: ast.Call) -> list[ast.AST]:
    """The arguments of a call that a person sees."""
    name = name_of(call)
    out: list[ast.AST] = []
    if name in ST_SHOWN:
        out += call.args[:3] if name == "metric" else [] if name == "page_link" else call.args[:1]
        out += [kw.value for kw in call.keywords if kw.arg in ST_KEYWORDS]
        out += [kw.value.body for kw in call.keywords                         # format_func=lambda: "..."
                if kw.arg == "format_func" and isinstance(kw.value, ast.Lambda)]
    if name in FIG_CALLS:
        out += [kw.value for kw in call.keywords if kw.arg in FIG_KEYWORDS]
        if name in ("set_title", "suptitle", "set_xlabel", "set_ylabel"):
            out += call.args[:1]
    if name == "DataFrame" and call.args and isinstance(call.args[0], ast.Dict):  # table headers
        out += [k for k in call.args[0].keys if k is not None]
    return out


def csv_builders(tree: ast.AST) -> set[ast.AST]:
    """The calls inside functions named *_csv: a download keeps English column names, so a script
    reading the file works whatever the language of the page it came from."""
    return {n for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name.endswith("_csv")
            for n in ast.walk(f)}


def findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT).as_posix()
    out = []
    skip = csv_builders(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node not in skip:
            for e in shown_expressions(node):
                for b in bad_literals(e):
                    out.append(f"{rel}:{b.lineno}: {ast.unparse(b)[:90]} (in {name_of(node)}())")
    return out


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shown_strings_are_translated(path):
    found = findings(path)
    assert not found, "untranslated text shown to a person (wrap it in _()):\n" + "\n".join(found)


def test_messages_raised_below_ui_for_a_page_are_translated():
    found = []
    for path in (ROOT / "karp_models").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("karp_models/ui/", "karp_models/cli")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            shown = name_of(node.exc) in SHOWN_ERRORS or (
                rel in SHOWN_ERROR_FILES and name_of(node.exc) in ("ValueError", "KeyError", "FileExistsError"))
            if shown:
                found += [f"{rel}:{b.lineno}: {ast.unparse(b)[:90]}" for b in bad_literals(node.exc.args[0])]
    assert not found, "a page shows these messages; wrap them in _():\n" + "\n".join(found)


def test_the_scan_finds_what_it_should():
    """The checker itself, on code that shows untranslated words, and on code that does not."""
    def scan(code: str) -> int:
        tree = ast.parse(code)
        return sum(len(bad_literals(e)) for n in ast.walk(tree) if isinstance(n, ast.Call)
                   for e in shown_expressions(n))
    assert scan('st.button("Start training")') == 1
    assert scan('st.caption(f"{n} images left")') == 1
    assert scan('c1.metric("Loss", f"{x:.3f}", help="How wrong it is")') == 2
    assert scan('st.radio(_("Image"), opts, format_func=lambda k: "any" if k is None else k)') == 1
    assert scan('fig.update_xaxes(title_text="step")') == 1
    assert scan('style.layout(fig, height=3, title=dict(text="Loss"))') == 1
    assert scan('pd.DataFrame({"cell": cells, _("value"): v})') == 1
    assert scan('st.button(_("Start training"), key="train_start", icon=":material/play_arrow:")') == 0
    assert scan('st.caption(_("{n} images left").format(n=n))') == 0
    assert scan('st.html("<style>p {font-size: 1rem}</style>")') == 0
    assert scan('st.markdown(f"**{name}**: {value:.3f}")') == 0
    assert scan('fig.update_xaxes(tickformat=".0%", title_text=_("step"))') == 0


def binds_and_calls_underscore(fn: ast.AST) -> bool:
    """Does this scope both bind `_` (assignment, loop, parameter) and call `_()`?"""
    binds = calls = False
    if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = fn.args
        binds = any(x.arg == "_" for x in a.args + a.kwonlyargs + a.posonlyargs)
        body = [fn.body] if isinstance(fn, ast.Lambda) else list(fn.body)
    else:
        body = list(fn.body)
    stack = body
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue                                                # their own scope
        if isinstance(n, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            calls |= any(isinstance(m, ast.Call) and isinstance(m.func, ast.Name) and m.func.id == "_"
                         for m in ast.walk(n))
            continue                                                # its loop variables are its own
        if isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store):
            binds = True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_":
            calls = True
        stack.extend(ast.iter_child_nodes(n))
    return binds and calls


def test_no_scope_that_translates_rebinds_the_translation_function():
    found = []
    for path in ALL_FILES:
        tree = ast.parse(path.read_text())
        scopes = [tree] + [n for n in ast.walk(tree)
                           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
        found += [f"{path.relative_to(ROOT)}:{getattr(s, 'lineno', 1)}" for s in scopes
                  if binds_and_calls_underscore(s)]
    assert not found, "these scopes call _() and also bind _: rename the throwaway variable\n" + "\n".join(found)
    assert binds_and_calls_underscore(ast.parse("c1, c2, _ = st.columns(3)\nst.title(_('x'))"))
