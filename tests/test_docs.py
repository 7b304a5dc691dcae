"""Every hook a plugin can implement is specified with a docstring and documented.

A new hook in ``core/hookspecs.py`` without a docstring or without a
``## <hook>`` section in ``docs/plugin_hooks.md`` breaks the build, and so
does a section left behind for a hook that no longer exists.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "plugin_hooks.md"
SPEC_MARK = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets


def hook_specs() -> dict[str, object]:
    return {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, SPEC_MARK)}


def doc_sections() -> dict[str, str]:
    """``## heading`` → the text up to the next ``##`` heading (code blocks skipped)."""
    sections: dict[str, str] = {}
    current, in_code = None, False
    for line in HOOKS_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            current = line[3:].strip().strip("`")
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_the_hook_specs_are_found():
    # Guards the two tests below against passing on an empty list.
    assert {"register_domain", "menu_items", "startup"} <= set(hook_specs())


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_spec_has_a_docstring(name):
    doc = inspect.getdoc(hook_specs()[name])
    assert doc and len(doc.split()) >= 5, f"hook {name} in core/hookspecs.py has no docstring"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_spec_has_a_section_in_plugin_hooks_md(name):
    sections = doc_sections()
    assert name in sections, f"docs/plugin_hooks.md has no '## {name}' section"
    body = sections[name]
    assert len(body.split()) >= 40, f"the section '## {name}' in docs/plugin_hooks.md is a stub"
    # Each hook section states its arguments and its failure policy.
    assert "Arguments" in body and "Failure policy" in body, name
    for argument in inspect.signature(hook_specs()[name]).parameters:
        assert f"`{argument}`" in body, f"'## {name}' does not describe the argument {argument}"


def test_no_section_documents_a_hook_that_does_not_exist():
    specs = set(hook_specs())
    hook_like = {h for h in doc_sections() if re.fullmatch(r"[a-z][a-z0-9_]*", h)}
    assert hook_like - specs == set(), "docs/plugin_hooks.md documents hooks core/hookspecs.py lacks"


def test_the_guide_explains_opt_in_arguments_and_isolation():
    headings = {h.lower() for h in doc_sections()}
    assert any("opt-in" in h for h in headings)
    assert any("isolation" in h for h in headings)


def test_the_formula_examples_of_the_forms_guide_are_valid_rules():
    """docs/forms.md shows designers rules in ```formula blocks: each must parse as a condition."""
    from core.regimes import expressions

    text = (ROOT / "docs" / "forms.md").read_text(encoding="utf-8")
    examples = re.findall(r"```formula\n(.+?)\n```", text, flags=re.S)
    assert len(examples) >= 5
    for example in examples:
        assert expressions.infer(expressions.parse(example)) == "bool", example
