"""The shape of karp_models/ui: figure builders never call Streamlit, widgets never build figures,
one cache mechanism, and no module past 450 lines."""
import ast
import re
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "karp_models" / "ui"


def modules(folder: Path = UI):
    return sorted(folder.rglob("*.py"))


def test_every_ui_module_stays_under_450_lines():
    long = {p.relative_to(UI).as_posix(): n for p in modules()
            if (n := len(p.read_text().splitlines())) >= 450}
    assert long == {}


def test_figure_builders_do_not_touch_streamlit():
    for p in modules(UI / "figures"):
        tree = ast.parse(p.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m.split(".")[0] == "streamlit" for m in imported if m), p.name
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "st"], p.name


def test_figures_are_built_only_in_the_figures_package():
    builds = re.compile(r"go\.Figure\(|make_subplots\(|\.add_trace\(|\.add_scatter\(")
    outside = [p.relative_to(UI).as_posix() for p in modules()
               if "figures" not in p.parts and builds.search(p.read_text())]
    assert outside == []


def test_one_home_made_cache():
    homemade = re.compile(r"OrderedDict|threading\.Lock|^_?[A-Z_]+: dict\[.*\] = \{\}", re.M)
    found = [p.relative_to(UI).as_posix() for p in modules() if homemade.search(p.read_text())]
    assert found == ["cache.py"]


def test_one_font_and_projector_css_definition():
    fonts = [p.relative_to(UI).as_posix() for p in modules()
             if re.search(r"^FONT\s*=", p.read_text(), re.M)]
    css = [p.relative_to(UI).as_posix() for p in modules() if "<style>" in p.read_text()
           and "stMarkdownContainer" in p.read_text()]
    assert fonts == ["style.py"] and css == ["style.py"]
