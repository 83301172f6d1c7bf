"""The text check of ``crmail.text`` applied to forms and to the pages' query strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponseBase

from crmail.text import repaired, text_problem


class CheckedTextForm(forms.BaseForm):
    """A form whose every submitted value is checked as text before its field cleans it.

    Django refuses NUL in character fields but lets a lone surrogate through to the
    database; this refuses both in any field (choices and ids included), as a form error on
    that field, before the field's own cleaning (which may look the value up) runs. The
    form shown again holds the value repaired (U+FFFD in place of what was refused), since
    a page cannot be written with a lone surrogate in it.
    """

    def _clean_fields(self) -> None:
        # Django's own loop (django.forms.forms.BaseForm._clean_fields), the text check first.
        for name, bf in self._bound_items():
            field = bf.field
            problem = None if field.disabled else text_problem(bf.data)
            if problem:
                self._repair(bf.html_name, bf.data)
                self.add_error(name, ValidationError(problem, code="invalid_text"))
                continue
            try:
                self.cleaned_data[name] = field._clean_bound_field(bf)
                if hasattr(self, f"clean_{name}"):
                    self.cleaned_data[name] = getattr(self, f"clean_{name}")()
            except ValidationError as e:
                self.add_error(name, e)

    def _repair(self, key: str, value: Any) -> None:
        if getattr(self.data, "_mutable", True) is False:
            self.data = self.data.copy()  # a request's QueryDict: copies are mutable
        if isinstance(value, list | tuple):
            fixed = [repaired(v) if isinstance(v, str) else v for v in value]
            if hasattr(self.data, "setlist"):
                self.data.setlist(key, fixed)
            else:
                self.data[key] = fixed
        elif isinstance(value, str):
            self.data[key] = repaired(value)


class QueryTextMiddleware:
    """A page whose query string holds what is not storable text answers 400 (400.html).

    A request may declare any charset, and Django decodes its query string with it, so
    ``?q=`` can bring a lone surrogate; NUL comes with ``%00``. Pages read their query
    parameters without a form (search, sort, page), so the check is made here, once. The
    API (``/api/``) is left to its own schemas, which name the parameter in a 422.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith("/api/") and any(
            text_problem(key) or text_problem(values) for key, values in request.GET.lists()
        ):
            raise BadRequest("The query string is not valid text.")
        return self.get_response(request)
