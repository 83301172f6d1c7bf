"""Text crmail accepts from people: Unicode that UTF-8 can encode, without NUL.

JSON escapes (``"\\ud800"``), command-line bytes that are not UTF-8 (Python hands them over
as surrogate escapes) and form data in exotic charsets can all carry a lone surrogate: not
a character, so no database stores it and no page or answer can be written with it. NUL is
refused by PostgreSQL. Each entry point checks its text once, with ``text_problem``: the
API's input schemas (``crmail.api.schemas.Input``), every web and record form
(``crmail.text_forms.CheckedTextForm``), the pages' query strings
(``crmail.text_forms.QueryTextMiddleware``) and the ``crmail`` command's arguments
(``crmail.config.cli``). This module imports nothing of Django, so the command starts
without loading Django's forms.
"""

from __future__ import annotations

import re
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")

NOT_TEXT = "This is not valid text: it holds a lone surrogate (bytes that are not UTF-8)."
NUL_TEXT = "Null characters are not allowed."  # Django's words for the same refusal


def repaired(text: str) -> str:
    """``text`` with each lone surrogate and NUL shown as U+FFFD, safe to display."""
    return SURROGATE.sub("\ufffd", text).replace("\x00", "\ufffd")


def text_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as text (strings inside lists and dicts included), or
    None when every string in it can be stored."""
    if isinstance(value, str):
        if SURROGATE.search(value):
            return NOT_TEXT
        if "\x00" in value:
            return NUL_TEXT
        return None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            problem = text_problem(item)
            if problem:
                return problem
    return None
