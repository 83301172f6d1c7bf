"""Email templates (SPEC F3): the list, the editor with its preview, deleting.

Everyone sees their own templates and the shared ones; another user's personal template
answers 404. A shared template someone else made opens read-only (still previewable); only
its owner or an administrator saves or deletes it. The preview is filled for a record the
user may view: live as they type (htmx posts the form to ``template_preview``), or by the
Preview button without script, which shows the page again without saving.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crmail.emailtemplates import actions, merge
from crmail.emailtemplates.models import EmailTemplate
from crmail.insights.queries import Rates, template_rates
from crmail.people.models import User
from crmail.web.template_forms import Preview, TemplateForm, preview


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    templates = list(actions.readable(user))
    rates = template_rates(user, [t.pk for t in templates])
    rows = [(row, actions.may_change(user, row), rates.get(row.pk, Rates())) for row in templates]
    return render(request, "web/templates_mail/list.html", {"rows": rows})


def _editor(
    request: HttpRequest, template: EmailTemplate | None, *, read_only: bool = False
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    initial = {"record": request.GET.get("record", "")[:40]}
    if template is not None:
        initial.update(
            name=template.name, subject=template.subject, body=template.body, shared=template.shared
        )
    data = request.POST if request.method == "POST" else None
    form = TemplateForm(data, initial=initial, user=user, read_only=read_only)
    shown: Preview | None = None
    if request.method == "POST" and form.is_valid():
        values = form.values()
        if "preview" in request.POST or read_only:
            shown = preview(user, values["subject"], values["body"], form.cleaned_data["record"])
        else:
            try:
                if template is None:
                    template = actions.do_create_template(user, **values)
                    messages.success(request, f"The template “{template.name}” was added.")
                else:
                    actions.do_update_template(user, template, values)
                    messages.success(request, f"The template “{template.name}” was saved.")
            except actions.Invalid as exc:
                form.add_action_errors(exc)
            except actions.NotAllowed as exc:
                raise PermissionDenied(str(exc)) from None
            else:
                return redirect("web:templates")
    context = {
        "form": form,
        "target": template,
        "read_only": read_only,
        "preview": shown,
        "fields": merge.field_list(),
    }
    return render(request, "web/templates_mail/form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_create(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    template = get_object_or_404(actions.readable(user), pk=pk)
    return _editor(request, template, read_only=not actions.may_change(user, template))


@login_required
@require_POST
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    template = get_object_or_404(actions.readable(user), pk=pk)
    try:
        actions.do_delete_template(user, template)
    except actions.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"The template “{template.name}” was deleted.")
    return redirect("web:templates")


@login_required
@require_POST
def template_preview(request: HttpRequest) -> HttpResponse:
    """The preview alone, for the editor's live update (htmx)."""
    user: User = request.user  # type: ignore[assignment]
    form = TemplateForm(request.POST, user=user)
    if form.is_valid():
        data = form.cleaned_data
        shown = preview(user, data["subject"], data["body"], data["record"])
    else:
        problems = [str(e) for errors in form.errors.values() for e in errors]
        shown = Preview(error=" ".join(problems))
    return render(request, "web/templates_mail/_preview.html", {"preview": shown})
