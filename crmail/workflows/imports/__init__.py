"""Filters from other mail programs as crmail rules (SPEC F2): Gmail's ``mailFilters.xml``
and Sieve scripts. ``read_file`` takes a file's bytes as uploaded (or read by the
command), checks them and hands them to the importer the content calls for; the result
lists the rules to make and, line by line, what cannot be imported and why. Pure code:
making the rules is the workflows' actions' job. Decision 037.
"""

from __future__ import annotations

from crmail.workflows.imports import gmail, sieve
from crmail.workflows.imports.result import (
    FilterImportError,
    ImportedRule,
    ImportResult,
    Problem,
    SkippedFilter,
    SourceLine,
)

__all__ = [
    "MAX_BYTES",
    "FilterImportError",
    "ImportResult",
    "ImportedRule",
    "Problem",
    "SkippedFilter",
    "SourceLine",
    "read_file",
    "read_text",
]

MAX_BYTES = 1024 * 1024  # far above any real export (thousands of filters), far below harm


def read_text(text: str) -> ImportResult:
    """Gmail's export when the text is XML, else a Sieve script."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise FilterImportError("The file is empty.")
    if text.lstrip().startswith("<"):
        return gmail.read(text)
    return sieve.read(text)


def read_file(data: bytes) -> ImportResult:
    """A file's bytes, checked: not too large, not empty, UTF-8 text."""
    if len(data) > MAX_BYTES:
        raise FilterImportError(
            f"The file is {len(data):,} bytes; filters up to {MAX_BYTES // 1024:,} KB can be "
            "imported."
        )
    if not data.strip():
        raise FilterImportError("The file is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise FilterImportError(
            "The file is not UTF-8 text (Gmail's export and Sieve scripts are); is it the "
            "right file?",
            line,
        ) from None
    if "\x00" in text:
        raise FilterImportError("The file holds null characters: it is not a text file.")
    return read_text(text)
