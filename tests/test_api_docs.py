"""The API page documents the whole public API, and every public object has a docstring."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import dropoutbook as db

API_PAGE = (Path(__file__).resolve().parents[1] / "api.md").read_text(encoding="utf-8")
DOCUMENTED = set(re.findall(r"\.\. auto\w+:: ([\w.]+)", API_PAGE))
PUBLIC = [name for name in db.__all__ if not inspect.ismodule(getattr(db, name))]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_is_on_the_api_page(name):
    assert f"dropoutbook.{name}" in DOCUMENTED, f"dropoutbook.{name} is missing from api.md"


@pytest.mark.parametrize("name", PUBLIC + [f"exercises.{n}" for n in db.exercises.__all__ if n.startswith("check_")])
def test_public_object_has_a_docstring_with_a_chapter_or_paper(name):
    obj = db
    for part in name.split("."):
        obj = getattr(obj, part)
    doc = inspect.getdoc(obj) or ""
    assert len(doc) > 40, f"{name} has no real docstring"
    assert "chapter" in doc.lower() or ":cite:" in doc, f"{name}'s docstring names neither its chapter nor a paper"
