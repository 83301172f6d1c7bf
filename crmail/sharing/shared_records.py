"""Reading custom sharing choices (SPEC F5): which records a user shares their synced mail
on, and what one user's choice on one record is.

The web pages (a record's Emails card, "My mail sharing", the administrators' page of a
user) and the API read through here; ``crmail.sharing.actions.share_record`` writes.
A reader sees only the shared records they may view themselves; the others are counted,
never named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crmail.crm.models import Record
from crmail.linking.models import Module
from crmail.people import access
from crmail.people.models import User
from crmail.sharing.models import Mode, SharedRecord, SharingSetting
from crmail.sharing.visibility import record_model


@dataclass(frozen=True)
class RecordChoice:
    """``user``'s custom choice on one record, and whether it applies now."""

    mode: str  # private, public, custom ("private" when the user has no setting)
    shared: bool  # a SharedRecord row exists (kept in every mode)
    locked: bool  # an administrator locked the setting

    @property
    def custom(self) -> bool:
        return self.mode == Mode.CUSTOM


@dataclass(frozen=True)
class SharedRow:
    module: str
    record: Record
    shared_at: datetime

    @property
    def record_id(self) -> int:
        return self.record.pk

    @property
    def module_label(self) -> str:
        return str(Module(self.module).label)

    @property
    def name(self) -> str:
        return str(self.record) or "(no name)"


@dataclass(frozen=True)
class SharedRecords:
    rows: list[SharedRow]  # the records the reader may view, by module then name
    hidden: int  # shared records the reader may not view (or that no longer exist)


def record_choice(user: User, module: str, record_id: int) -> RecordChoice:
    """What ``user`` chose for their synced mail on one record (two small queries)."""
    setting = SharingSetting.objects.filter(user=user).only("mode", "locked").first()
    if setting is None:
        return RecordChoice(Mode.PRIVATE, False, False)
    shared = SharedRecord.objects.filter(
        setting=setting, module=module, record_id=record_id
    ).exists()
    return RecordChoice(setting.mode, shared, setting.locked)


def shared_records(owner: User, reader: User) -> SharedRecords:
    """The records ``owner`` shares their synced mail on, as ``reader`` may see them.

    One query for the choices, then one per module that has any.
    """
    choices = list(
        SharedRecord.objects.filter(setting__user=owner).values_list(
            "module", "record_id", "created_at"
        )
    )
    by_module: dict[str, dict[int, datetime]] = {}
    for module, record_id, created_at in choices:
        by_module.setdefault(module, {})[record_id] = created_at
    rows: list[SharedRow] = []
    for module in Module.values:
        wanted = by_module.get(module)
        if not wanted:
            continue
        model = record_model(module)
        for record in access.visible(reader, model).filter(pk__in=list(wanted)):
            rows.append(SharedRow(module, record, wanted[record.pk]))
    order = {m: i for i, m in enumerate(Module.values)}
    rows.sort(key=lambda r: (order[r.module], r.name.casefold(), r.record_id))
    return SharedRecords(rows, hidden=len(choices) - len(rows))
