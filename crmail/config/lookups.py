"""``in`` on an integer column passes over values the database cannot hold.

Django answers ``pk=99999999999999999999999`` with no rows (its integer lookups know
each backend's integer range), but not ``pk__in=[...]``: SQLite's driver raises
OverflowError and PostgreSQL "bigint out of range", a server error where a form's
multiple choice or an id list from a request should say "not found" or "not a valid
choice". Such a value can match no row, so it is left out of the list; a list left empty
matches nothing, as Django's own ``in`` does for an empty list."""

from __future__ import annotations

from typing import Any

from django.db.models import IntegerField
from django.db.models.lookups import In


class IntegerIn(In):
    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        if self.rhs_is_direct_value():
            kind = self.lhs.output_field.get_internal_type()
            low, high = connection.ops.integer_field_range(kind)
            self.rhs = [
                v
                for v in self.rhs
                if not isinstance(v, int)
                or ((low is None or v >= low) and (high is None or v <= high))
            ]
        return super().process_rhs(compiler, connection)


def register() -> None:
    """Put ``IntegerIn`` in place of Django's ``in`` for every integer field (ids too)."""
    IntegerField.register_lookup(IntegerIn)
