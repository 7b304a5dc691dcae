"""``baocao plugin new NAME``: write a working plugin package to start from.

The package is the smallest that uses every seam a report domain needs — the entry point, a domain
with a menu entry and a permission, a page, data files (an indicator, a form, a monthly regime),
messages in Vietnamese and English, a stylesheet — and its own tests, which run with baocao's pytest
fixtures (web/testing.py) and pass as generated. The files are templates under
``core/scaffold_templates/`` (``.tmpl``, so no tool reads them as code), where ``@@name@@`` and the
other placeholders are replaced and the path segments ``PACKAGE``, ``NAME`` and ``FORM`` renamed.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from core import __version__
from core.errors import BaocaoError
from core.plugins import BUILTIN_PLUGINS, RESERVED_NAMES
from core.settings import PLUGIN_NAME_RE

TEMPLATES = Path(__file__).parent / "scaffold_templates"
SUFFIX = ".tmpl"


class ScaffoldError(BaocaoError):
    """The plugin cannot be generated (its name, or where it would go)."""


@dataclass(frozen=True)
class Names:
    """Every name the package derives from the plugin's."""

    name: str  # nong_nghiep: the entry point, /p/<name>/, message and permission prefixes
    package: str  # baocao_nong_nghiep
    dist: str  # baocao-nong-nghiep: the distribution and the folder
    prefix: str  # NN: the owner letters of its local indicator codes (NN01, NN0101)
    form: str  # NN-01-THANG

    def replacements(self) -> dict[str, str]:
        return {"@@name@@": self.name, "@@package@@": self.package, "@@dist@@": self.dist,
                "@@prefix@@": self.prefix, "@@form@@": self.form, "@@baocao_version@@": __version__}


def indicator_prefix(name: str) -> str:
    """Two capital letters for the plugin's local indicator codes: the initials of its first two
    words, else its first two letters (``nong_nghiep`` → NN, ``thuy_san`` → TS, ``hello`` → HE).
    A letter pair that reads as a national code (T, H or X then a digit) cannot arise: both are letters."""
    words = [w for w in name.split("_") if w and w[0].isalpha()]
    letters = "".join(w[0] for w in words[:2]) if len(words) >= 2 else re.sub(r"[^a-z]", "", name)[:2]
    return letters.upper()


def check_name(name: str, *, reserved=()) -> Names:
    """The names of plugin ``name``, or ``ScaffoldError`` saying why it cannot be one: snake_case
    (lower-case unaccented letters, digits, underscores, starting with a letter, 3–31 characters),
    not a name the core keeps (its URL segments, a command of ``baocao``: ``reserved``, a built-in
    plugin, a Python keyword)."""
    if not PLUGIN_NAME_RE.match(name or ""):
        raise ScaffoldError("scaffold.error.bad_name", name=name)
    builtins = {module.rsplit(".", 1)[-1] for module in BUILTIN_PLUGINS}
    if name in RESERVED_NAMES or name in set(reserved) or name in builtins or keyword.iskeyword(name):
        raise ScaffoldError("scaffold.error.reserved", name=name)
    prefix = indicator_prefix(name)
    return Names(name=name, package=f"baocao_{name}", dist="baocao-" + name.replace("_", "-"), prefix=prefix,
                 form=f"{prefix}-01-THANG")


def _target(relative: Path, names: Names) -> Path:
    parts = [{"PACKAGE": names.package, "NAME": names.name, "FORM": names.form}.get(p, p) for p in relative.parts]
    parts[-1] = parts[-1].removesuffix(SUFFIX)
    for placeholder, value in (("NAME", names.name), ("FORM", names.form)):
        parts[-1] = parts[-1].replace(placeholder, value)
    return Path(*parts)


def new_plugin(name: str, directory: str | Path = ".", *, reserved=()) -> Path:
    """Write the package of plugin ``name`` into ``<directory>/<dist>/``; return that folder.
    Refuses a folder that exists (nothing is overwritten) and a bad name, writing nothing."""
    names = check_name(name, reserved=reserved)
    parent = Path(directory)
    if parent.exists() and not parent.is_dir():
        raise ScaffoldError("scaffold.error.not_a_folder", path=str(parent))
    root = parent / names.dist
    if root.exists():
        raise ScaffoldError("scaffold.error.exists", path=str(root))
    files = sorted(p for p in TEMPLATES.rglob("*" + SUFFIX) if p.is_file())
    root.mkdir(parents=True)
    for template in files:
        text = template.read_text(encoding="utf-8")
        for placeholder, value in names.replacements().items():
            text = text.replace(placeholder, value)
        target = root / _target(template.relative_to(TEMPLATES), names)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root
