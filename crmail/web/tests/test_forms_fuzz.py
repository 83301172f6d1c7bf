"""Every form of every page, filled with what no user would type: never a server error.

The pages are those the visibility walk opens (``test_every_route``: every pattern of the
URL conf, on rows of every kind), read as an administrator and as a salesperson with
mail. Each form found on a page is posted with each field in turn set to a junk value,
then with all of them, as its ``method`` says; each page is also asked for with junk in
each of the query parameters the pages read that this page reads (those it asks its
query for when opened plainly: a page answers a parameter it never asks for as if it
were not there; all of them when it reads its query whole). Each request runs in a
savepoint that is rolled back, so every form meets the same rows. A junk value must
come back as a form error, a message, a 400 or a 404; never a 500. ``CRMAIL_SOAK=1``
runs many more values.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, QueryDict
from django.test import Client

from crmail.sharing.tests.test_every_route import World, _ask, web_requests
from crmail.sharing.tests.test_every_route import world as world  # the fixture

# One pass runs it: what a database refuses (an integer past its range) is tested on
# each in config/tests/test_lookups.py; a form's answer is the same on both.
pytestmark = [pytest.mark.django_db, pytest.mark.database_independent]

# An id past every database's integers: Django's ``in`` did not guard against it.
OUT_OF_RANGE = "99999999999999999999999"
JUNK = [OUT_OF_RANGE]
SOAK_JUNK = [
    *JUNK,
    "x" * 5000,
    "",
    " ",
    "-1",
    "0",
    "-" + OUT_OF_RANGE,
    "1e400",
    "nan",
    "2026-13-45",
    "<script>alert(1)</script>",
    "a\r\nBcc: x@example.com",
    "'; drop table x; --",
    "\uff11\uff12",  # full-width digits
    "[]",
    "{}",
    "../../etc/passwd",
    "a\x00b",
]
QUERY_KEYS = ["page", "q", "sort", "after", "before", "user", "folder", "stream", "view", "tag"]


ALL = "*"  # the page read its query whole (went through it, copied it, counted it)


@contextmanager
def _keys_read() -> Iterator[set[str]]:
    """The names the page (its view and template, not the middleware, which checks every
    parameter alike) asks the request's query for while the block runs; ``ALL`` among
    them when it read the query whole."""
    read: set[str] = set()
    asked: list[QueryDict] = []  # the query of the request being answered (its view's)

    def recording(original: Callable[..., Any], whole: bool) -> Callable[..., Any]:
        def reading(self: QueryDict, *args: Any, **kwargs: Any) -> Any:
            if asked and self is asked[-1]:
                read.add(ALL if whole else args[0])  # by key: the key is the first argument
            return original(self, *args, **kwargs)

        return reading

    resolve = BaseHandler.resolve_request  # after the middleware, before the view

    def resolving(self: BaseHandler, request: HttpRequest) -> Any:
        asked[:] = [request.GET]
        return resolve(self, request)

    by_key = ("__getitem__", "__contains__", "get", "getlist", "_getlist")
    whole_query = ("__iter__", "__len__", "keys", "items", "lists", "values", "dict")
    whole_query += ("copy", "urlencode", "__copy__", "__deepcopy__")
    own = {name: QueryDict.__dict__.get(name) for name in by_key + whole_query}
    for name in by_key + whole_query:
        setattr(QueryDict, name, recording(getattr(QueryDict, name), name in whole_query))
    BaseHandler.resolve_request = resolving  # type: ignore[method-assign]
    try:
        yield read
    finally:
        BaseHandler.resolve_request = resolve  # type: ignore[method-assign]
        for name, attribute in own.items():
            if attribute is None:
                delattr(QueryDict, name)
            else:
                setattr(QueryDict, name, attribute)


class _Forms(HTMLParser):
    """The forms of a page: action, method and the names of their fields (with the
    value each field carries on the page)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = {}
            method = found.get("method", "get").lower()
            self.forms.append((found.get("action", ""), method, self._open))
        elif tag in ("input", "select", "textarea") and self._open is not None:
            name = found.get("name", "")
            if name and name != "csrfmiddlewaretoken":
                self._open.setdefault(name, found.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _failures(client: Client, session: str, pages: list[tuple[str, dict[str, Any]]]) -> list[str]:
    failed: list[str] = []
    done: set[tuple[str, str, tuple[str, ...]]] = set()
    values = SOAK_JUNK if os.environ.get("CRMAIL_SOAK") == "1" else JUNK

    def call(method: str, url: str, data: dict[str, Any]) -> tuple[int, str]:
        client.cookies[settings.SESSION_COOKIE_NAME] = session  # a sign-out undone
        send: Callable[[], Any] = (
            (lambda: client.get(url, data)) if method == "get" else (lambda: client.post(url, data))
        )
        try:
            status, body = _ask(send)
        except Exception:
            failed.append(f"{method.upper()} {url} {data!r:.300}\n{traceback.format_exc(-3)}")
            return 500, ""
        if status >= 500:
            failed.append(f"{method.upper()} {url} {data!r:.300}: {status}")
        return status, body

    for url, query in pages:
        with _keys_read() as read:
            status, body = call("get", url, query)
        if status != 200:
            continue
        parser = _Forms()
        parser.feed(body)
        for action, method, fields in parser.forms:
            target = action or url
            key = (target, method, tuple(sorted(fields)))
            if target.startswith(("http:", "https:", "mailto:")) or key in done:
                continue
            done.add(key)
            method = "get" if method == "get" else "post"
            for junk in values:
                for name in fields:
                    call(method, target, {**fields, name: junk})
                call(method, target, dict.fromkeys(fields, junk))
        for name in QUERY_KEYS if ALL in read else [k for k in QUERY_KEYS if k in read]:
            for junk in values:
                call("get", url, {**query, name: junk})
    return failed


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_no_form_answers_junk_with_a_server_error(world: World, role: str) -> None:
    pages: dict[str, tuple[str, dict[str, Any]]] = {}
    for url, query, name, _ in web_requests(world):
        pages.setdefault(name, (url, query))  # one page of each pattern
    client = Client(raise_request_exception=True)
    client.force_login(world.roles[role])
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    failed = _failures(client, session, list(pages.values()))
    assert not failed, "\n\n".join(failed[:20])
