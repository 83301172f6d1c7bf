"""Import filters (``/settings/workflows/import/``): a Gmail filters export or a Sieve
script becomes the user's own rules. Upload, then a preview of each rule that will be made
and each line that cannot be (and why), then "Import N rules": all in one transaction, off,
to try on past mail before turning them on. The preview carries the file's text back in
the form, read again on import, so nothing is kept between the two steps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from crmail.config.words import count
from crmail.text_forms import CheckedTextForm
from crmail.web.views.compose import CappedUploadHandler
from crmail.web.workflow_forms import FIELD_LABELS, KIND_LABELS, OP_LABELS, TRIGGER_LABELS
from crmail.workflows import actions
from crmail.workflows.imports import (
    MAX_BYTES,
    FilterImportError,
    read_file,
)
from crmail.workflows.spec import ActionKind, Field, Op


class ImportForm(CheckedTextForm, forms.Form):
    file = forms.FileField(
        required=False,
        allow_empty_file=True,  # read_file says "The file is empty." as the API and command do
        label="Filters file",
        help_text="Gmail's mailFilters.xml (Settings → Filters and Blocked Addresses → Export) "
        "or a Sieve script (.sieve), up to 1 MB.",
    )
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"hidden": True}))


@login_required
@require_http_methods(["GET", "POST"])
@csrf_exempt  # checked below, once the upload handler is in place (Django's upload docs)
def workflow_import(request: HttpRequest) -> HttpResponse:
    request.upload_handlers = [CappedUploadHandler(request, MAX_BYTES)]
    return _import(request)


@csrf_protect
def _import(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "web/settings/workflow_import.html", {"form": ImportForm()})
    form = ImportForm(request.POST, request.FILES)
    context: dict[str, Any] = {"form": form}
    valid = form.is_valid()
    if getattr(request, "upload_over", 0):
        form.add_error(
            "file", f"The file is larger than {filesizeformat(MAX_BYTES)}: too large to be filters."
        )
        valid = False
    if not valid:
        return render(request, "web/settings/workflow_import.html", context)
    upload = form.cleaned_data["file"]
    text = form.cleaned_data["text"]
    try:
        if upload is not None:
            result = read_file(upload.read())
            text = result_text(upload)
        elif text:
            result = read_file(text.replace("\r\n", "\n").encode("utf-8"))  # as uploaded
        else:
            form.add_error("file", "Choose the file to import.")
            return render(request, "web/settings/workflow_import.html", context)
    except FilterImportError as exc:
        form.add_error("file", str(exc))
        return render(request, "web/settings/workflow_import.html", context)
    if "import" in request.POST and upload is None:
        if not result.rules:
            messages.info(request, "There was nothing to import.")
            return redirect("web:workflows")
        try:
            made = actions.import_rules(result, by=request.user)
        except actions.Invalid as exc:
            form.add_error(None, str(exc))
            return render(request, "web/settings/workflow_import.html", context)
        messages.success(
            request,
            f"{count(len(made), 'rule')} imported, off: try each on past mail, then turn it on.",
        )
        return redirect("web:workflows")
    context |= {
        "result": result,
        "rules": [preview(rule.dump()) | {"rule": rule} for rule in result.rules],
        "confirm": ImportForm(initial={"text": text}),
    }
    return render(request, "web/settings/workflow_import.html", context)


def result_text(upload: Any) -> str:
    """The uploaded file's text, as the preview carries it to the import (``read_file``
    has checked it is UTF-8)."""
    upload.seek(0)
    return upload.read().decode("utf-8").removeprefix("\ufeff")


def preview(spec: dict[str, Any]) -> dict[str, Any]:
    """A rule in words: when, each condition, each action with what it names."""
    conditions = []
    for c in spec["conditions"]:
        subject = FIELD_LABELS.get(c["field"], c["field"])
        if c.get("name"):
            subject = f"{subject} {c['name']}"
        values = [_value(v, size=c["field"] == Field.SIZE) for v in c["values"]]
        negated = c["op"] in (Op.NOT_CONTAINS, Op.IS_NOT)
        joined = (" nor " if negated else " or ").join(values)
        conditions.append(f"{subject} {OP_LABELS.get(c['op'], c['op'])} {joined}")
    steps = []
    for a in spec["actions"]:
        label = KIND_LABELS.get(a["kind"], a["kind"])
        if a["kind"] == ActionKind.MOVE_TO_FOLDER:
            label = f"{label}: {a['params']['folder']}"
        elif a["kind"] == ActionKind.TAG:
            label = f"{label}: {', '.join(a['params']['tags'])}"
        steps.append(label)
    return {
        "when": ", ".join(TRIGGER_LABELS.get(t, t) for t in spec["triggers"]),
        "joiner": "All of" if spec["match"] == "all" else "Any of",
        "conditions": conditions,
        "actions": steps,
    }


def _value(value: Any, *, size: bool = False) -> str:
    if size:
        return filesizeformat(value)
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return f"“{value}”" if isinstance(value, str) else f"{value:,}"
