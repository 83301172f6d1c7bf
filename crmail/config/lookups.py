"""``in`` on an integer column, or on a relation to one, passes over values the database
cannot hold.

Django answers ``pk=99999999999999999999999`` with no rows (its integer lookups know
each backend's integer range), but not ``pk__in=[...]`` nor ``message__in=[...]``:
SQLite's driver raises OverflowError and PostgreSQL "bigint out of range", a server
error where a form's multiple choice or an id list from a request should say "not found"
or "not a valid choice". Such a value can match no row, so it is left out of the list; a
list left empty matches nothing, as Django's own ``in`` does for an empty list."""

from __future__ import annotations

from typing import Any

from django.db.models import ForeignObject, IntegerField
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


def _in_range(lookup: Any, connection: Any) -> None:
    """Drop from ``lookup``'s literal list the integers outside its column's range."""
    field = lookup.lhs.output_field
    field = getattr(field, "target_field", field)  # a relation: the column it holds
    if lookup.rhs_is_direct_value() and isinstance(field, IntegerField):
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        lookup.rhs = [
            v
            for v in lookup.rhs
            if not isinstance(v, int) or ((low is None or v >= low) and (high is None or v <= high))
        ]


class IntegerIn(In):  # type: ignore[type-arg]
    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        _in_range(self, connection)
        return super().process_rhs(compiler, connection)


class RelatedIntegerIn(RelatedIn):
    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        _in_range(self, connection)
        return super().process_rhs(compiler, connection)


def register() -> None:
    """Put these in place of Django's ``in`` for every integer field (ids too) and every
    relation (a ForeignKey to an integer id)."""
    IntegerField.register_lookup(IntegerIn)
    ForeignObject.register_lookup(RelatedIntegerIn)
