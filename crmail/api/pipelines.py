"""``/pipelines``: the sales pipelines and their stages, read-only (deals need stage ids)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from crmail.api import records
from crmail.api.schemas import READ_ERRORS, Id, ListParams, Page, PipelineOut
from crmail.crm.models import Pipeline

router = Router(tags=["Pipelines"])


def pipelines() -> QuerySet[Pipeline]:
    return Pipeline.objects.prefetch_related("stages")


@router.get(
    "", response={200: Page[PipelineOut]}, openapi_extra=READ_ERRORS, summary="List pipelines"
)
def list_pipelines(request: HttpRequest, params: Query[ListParams]) -> dict:
    """Every pipeline with its stages in order, the default pipeline first."""
    return records.page(pipelines().order_by("-is_default", "name", "pk"), params)


@router.get(
    "/{id}", response={200: PipelineOut}, openapi_extra=READ_ERRORS, summary="Read a pipeline"
)
def read_pipeline(request: HttpRequest, id: Id) -> Pipeline:
    return records.get_or_404(pipelines(), id)
