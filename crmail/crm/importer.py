"""Import Leads, Contacts, Accounts and Deals from a CSV file (``crmail import``).

Every row goes through ``crm.actions.create_record`` as the acting user, so validation
and access are those of the web UI and the API. Related records named in the file
(account by name, contact by email, owner by email, pipeline and stage by name) are
looked up among what the acting user may see; a row that cannot be imported is reported
with the line of the file it starts on (the header is line 1) and a reason naming the
column. The file is read as a stream: any size, constant memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from django.db import IntegrityError, transaction

from crmail.crm.actions import NotAllowed, RecordInvalid, create_record
from crmail.crm.addresses import normalize_address
from crmail.crm.forms import FORMS
from crmail.crm.models import RECORD_MODELS, Account, Contact, EmailAddress, LeadStatus, Pipeline
from crmail.people import access
from crmail.people.models import User

MODULES = tuple(RECORD_MODELS)
BATCH_SIZE = 200
SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t"

# Column names, normalised (lower case, without spaces, underscores, hyphens and dots),
# and what they fill in. Targets are form fields, or lookups done here: ``full_name`` is
# split into first and last name; ``account``, ``contact``, ``owner``, ``pipeline`` and
# ``stage`` are found by name or email and given to the form as ids.
_COMMON = {
    "owner": "owner",
    "owneremail": "owner",
    "ownedby": "owner",
    "recordowner": "owner",
    "description": "description",
    "notes": "description",
    "note": "description",
}
_PERSON = {
    **_COMMON,
    "firstname": "first_name",
    "givenname": "first_name",
    "first": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "familyname": "last_name",
    "last": "last_name",
    "name": "full_name",
    "fullname": "full_name",
    "email": "email",
    "emailaddress": "email",
    "primaryemail": "email",
    "workemail": "email",
    "secondaryemails": "secondary_emails",
    "secondaryemail": "secondary_emails",
    "otheremails": "secondary_emails",
    "otheremail": "secondary_emails",
    "additionalemails": "secondary_emails",
    "title": "title",
    "jobtitle": "title",
    "position": "title",
    "phone": "phone",
    "phonenumber": "phone",
    "workphone": "phone",
    "businessphone": "phone",
    "telephone": "phone",
    "mobile": "mobile",
    "mobilephone": "mobile",
    "mobilenumber": "mobile",
    "cell": "mobile",
    "cellphone": "mobile",
}
_ORGANISATION_NAMES = ("account", "accountname", "company", "companyname", "organisation")
COLUMNS: dict[str, dict[str, str]] = {
    "contacts": {
        **_PERSON,
        "contactname": "full_name",
        **dict.fromkeys(_ORGANISATION_NAMES, "account"),
        "timezone": "time_zone",
        "tz": "time_zone",
    },
    "leads": {
        **_PERSON,
        "leadname": "full_name",
        **dict.fromkeys(_ORGANISATION_NAMES, "company"),
        "status": "status",
        "leadstatus": "status",
        "source": "source",
        "leadsource": "source",
    },
    "accounts": {
        **_COMMON,
        "name": "name",
        **dict.fromkeys(_ORGANISATION_NAMES, "name"),
        "website": "website",
        "web": "website",
        "url": "website",
        "homepage": "website",
        "domain": "domain",
        "webdomain": "domain",
        "phone": "phone",
        "phonenumber": "phone",
        "telephone": "phone",
        "industry": "industry",
    },
    "deals": {
        **_COMMON,
        "name": "name",
        "dealname": "name",
        "opportunity": "name",
        "opportunityname": "name",
        "pipeline": "pipeline",
        "stage": "stage",
        "dealstage": "stage",
        "amount": "amount",
        "value": "amount",
        "dealvalue": "amount",
        "dealamount": "amount",
        "closingdate": "closing_date",
        "closedate": "closing_date",
        "expectedclosedate": "closing_date",
        "expectedclosingdate": "closing_date",
        "contactemail": "contact",
        "contact": "contact",
        **dict.fromkeys(_ORGANISATION_NAMES, "account"),
    },
}


@dataclass(frozen=True)
class Progress:
    """How far an import has got: data rows read, bytes read and the file's size if known."""

    rows: int
    bytes_read: int
    total_bytes: int | None


@dataclass
class ImportReport:
    module: str
    rows: int = 0  # data rows read (blank lines are not rows)
    valid: int = 0  # rows that made a valid record
    imported: int = 0  # records kept
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: dict[str, str] = field(default_factory=dict)  # header → field
    rolled_back: bool = False  # atomic or dry run: nothing was kept
    dry_run: bool = False

    @property
    def failed(self) -> int:
        return len(self.errors)


class ImportFailed(Exception):
    """The file as a whole cannot be imported (not a row: the header, the encoding…)."""


class _CellError(Exception):
    """A value the importer cannot turn into what the form expects."""


Source = str | os.PathLike[str] | IO[bytes] | IO[str]


def import_csv(
    module: str,
    source: Source,
    acting_user: User,
    owner: User | None = None,
    *,
    atomic: bool = False,
    dry_run: bool = False,
    progress: Callable[[Progress], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import the rows of ``source`` (a path, or a binary or text file) as ``module`` records.

    Records are created by ``acting_user``; each is owned by its row's Owner column, else
    by ``owner``, else by ``acting_user``. With ``atomic`` nothing is kept when any row
    fails; with ``dry_run`` nothing is kept at all (every row is still checked). Otherwise
    good rows are committed in batches of ``batch_size`` and bad rows are reported.
    """
    if module not in RECORD_MODELS:
        raise ImportFailed(f"Unknown module {module!r}: use one of {', '.join(MODULES)}.")
    if not access.can_create(acting_user, RECORD_MODELS[module]):
        raise NotAllowed(f"{acting_user.email} may not create {module}.")
    with _CsvFile(source) as csv_file:
        report = ImportReport(
            module=module,
            dry_run=dry_run,
            encoding=csv_file.encoding,
            delimiter=csv_file.delimiter,
            warnings=list(csv_file.warnings),
        )
        rows = _rows(csv_file, report)
        header = next(rows, None)
        if header is None:
            report.warnings.append("The file is empty: there was nothing to import.")
            return report
        converter = _RowConverter(module, header[1], acting_user, owner, report)

        def run(batch: Iterable[tuple[int, list[str]]]) -> None:
            for line, cells in batch:
                report.rows += 1
                reason = converter.create(cells)
                if reason is None:
                    report.valid += 1
                else:
                    report.errors.append((line, reason))
                if progress is not None:
                    progress(Progress(report.rows, csv_file.bytes_read, csv_file.total_bytes))

        if atomic or dry_run:
            with transaction.atomic():
                run(rows)
                if dry_run or report.errors:
                    transaction.set_rollback(True)
                    report.rolled_back = True
            report.imported = 0 if report.rolled_back else report.valid
        else:
            while batch := list(itertools.islice(rows, batch_size)):
                with transaction.atomic():
                    run(batch)
                report.imported = report.valid
    return report


def _rows(csv_file: _CsvFile, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    """``(first line, cells)`` of each non-blank row; the first is the header."""
    reader = csv.reader(csv_file.lines, delimiter=csv_file.delimiter)
    end = 0
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.errors.append(
                (reader.line_num, f"The file cannot be read from this line on ({exc}).")
            )
            return
        end = reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


class _RowConverter:
    """Turns the cells of one row into form data and creates the record."""

    def __init__(
        self,
        module: str,
        header: list[str],
        acting_user: User,
        owner: User | None,
        report: ImportReport,
    ) -> None:
        self.module = module
        self.user = acting_user
        self.default_owner = owner
        self.form_fields = FORMS[module].base_fields
        self.columns: list[tuple[int, str, str]] = []  # (index, target, header)
        self.labels: dict[str, str] = {}
        self._cache: dict[tuple[str, str], Any] = {}
        aliases = COLUMNS[module]
        unknown: list[str] = []
        for index, raw in enumerate(header):
            label = raw.strip()
            if not label:
                continue
            target = aliases.get(_normalise_header(label))
            if target is None:
                unknown.append(label)
            elif target in self.labels:
                report.warnings.append(
                    f"Columns {self.labels[target]!r} and {label!r} both mean "
                    f"{self.field_label(target)}; only {self.labels[target]!r} is imported."
                )
            else:
                self.labels[target] = label
                self.columns.append((index, target, label))
                report.columns[label] = target
        if not self.columns:
            raise ImportFailed(
                f"No column of the file matches a field of {module} "
                f"(the header is: {', '.join(h.strip() for h in header)})."
            )
        if unknown:
            report.warnings.append(
                f"Column{'s' if len(unknown) > 1 else ''} not imported "
                f"(no matching field): {', '.join(unknown)}."
            )
        self.width = len(header)

    def field_label(self, name: str) -> str:
        if name in self.labels:
            return self.labels[name]
        form_field = self.form_fields.get(name)
        if form_field is not None and form_field.label:
            return str(form_field.label)
        return name.replace("_", " ").capitalize()

    def create(self, cells: list[str]) -> str | None:
        """Create the record of one row; the reason it failed, or None."""
        extra = cells[self.width :]
        if any(c.strip() for c in extra):
            return (
                f"The row has {len(cells)} values but the header has {self.width} columns "
                "(a missing quote or a delimiter inside a value?)."
            )
        values = {
            target: cells[index].strip()
            for index, target, _ in self.columns
            if index < len(cells) and cells[index].strip()
        }
        problems: list[str] = []
        data: dict[str, Any] = {}
        for target, value in values.items():
            try:
                self._fill(data, target, value, values)
            except _CellError as exc:
                problems.append(f"{self.field_label(target)}: {exc}")
        try:
            self._defaults(data)
        except _CellError as exc:
            problems.append(str(exc))
        if problems:
            return "; ".join(problems)
        try:
            create_record(self.user, self.module, data)
        except RecordInvalid as exc:
            return "; ".join(self._reason(e["field"], e["message"]) for e in exc.errors)
        except NotAllowed as exc:
            return str(exc)
        except IntegrityError as exc:
            return f"The record could not be saved ({exc})."
        return None

    def _reason(self, field_name: str, message: str) -> str:
        if field_name == "__all__":
            return message
        return f"{self.field_label(field_name)}: {message}"

    def _fill(self, data: dict[str, Any], target: str, value: str, row: dict[str, str]) -> None:
        if target == "full_name":
            if "first_name" not in row and "last_name" not in row:
                first, _, last = value.rpartition(" ")
                data["first_name"], data["last_name"] = first.strip(), last
        elif target == "owner":
            data["owner"] = self._owner(value)
        elif target == "account":
            data["account"] = self._account(value)
        elif target == "contact":
            data["contact"] = self._contact(value)
        elif target == "pipeline":
            data["pipeline"] = self._pipeline(value).pk
        elif target == "stage":
            data["stage"] = self._stage(row.get("pipeline", ""), value)
        elif target == "amount":
            data["amount"] = parse_amount(value)
        elif target == "closing_date":
            data["closing_date"] = parse_date(value).isoformat()
        elif target == "status":
            data["status"] = _LEAD_STATUSES.get(value.lower(), value)
        else:
            data[target] = value

    def _defaults(self, data: dict[str, Any]) -> None:
        if "owner" not in data and self.default_owner is not None:
            data["owner"] = self.default_owner.pk
        if self.module == "leads":
            data.setdefault("status", LeadStatus.NEW)
        if self.module == "deals" and "stage" not in data:
            pipeline_id = data.get("pipeline") or self._pipeline(None).pk
            data["stage"] = self._first_stage(pipeline_id)

    def _cached(self, kind: str, key: str, find: Callable[[], Any]) -> Any:
        slot = (kind, key.lower())
        if slot not in self._cache:
            try:
                self._cache[slot] = find()
            except _CellError as exc:
                self._cache[slot] = exc
        found = self._cache[slot]
        if isinstance(found, _CellError):
            raise found
        return found

    def _owner(self, email: str) -> int:
        def find() -> int:
            users = User.objects.filter(email__iexact=email, is_active=True)
            pk = users.values_list("pk", flat=True).first()
            if pk is None:
                raise _CellError(f"there is no active user with the email {email!r}.")
            return pk

        return self._cached("owner", email, find)

    def _account(self, name: str) -> int:
        def find() -> int:
            found = list(
                access.visible(self.user, Account)
                .filter(name__iexact=name)
                .values_list("pk", flat=True)[:2]
            )
            if not found:
                raise _CellError(f"there is no account named {name!r} that you can see.")
            if len(found) > 1:
                raise _CellError(f"several accounts are named {name!r}; link this one by hand.")
            return found[0]

        return self._cached("account", name, find)

    def _contact(self, email: str) -> int:
        def find() -> int:
            try:
                address = normalize_address(email)
            except Exception:
                raise _CellError(f"{email!r} is not an email address.") from None
            found = list(
                EmailAddress.objects.filter(
                    address=address, contact__in=access.visible(self.user, Contact)
                )
                .values_list("contact_id", flat=True)
                .distinct()[:2]
            )
            if not found:
                raise _CellError(f"there is no contact with the email {address} that you can see.")
            if len(found) > 1:
                raise _CellError(f"several contacts have the email {address}; link by hand.")
            return found[0]

        return self._cached("contact", email, find)

    def _pipeline(self, name: str | None) -> Pipeline:
        def find() -> Pipeline:
            if name is None:
                found = Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.first()
                if found is None:
                    raise _CellError("No pipeline exists yet; an administrator must create one.")
                return found
            found = Pipeline.objects.filter(name__iexact=name).first()
            if found is None:
                names = ", ".join(Pipeline.objects.values_list("name", flat=True))
                raise _CellError(f"there is no pipeline named {name!r} (pipelines: {names}).")
            return found

        return self._cached("pipeline", name or "", find)

    def _stage(self, pipeline_name: str, name: str) -> int:
        pipeline = self._pipeline(pipeline_name or None)

        def find() -> int:
            stages = list(pipeline.stages.values_list("pk", "name"))
            for pk, stage_name in stages:
                if stage_name.lower() == name.lower():
                    return pk
            names = ", ".join(n for _, n in stages)
            raise _CellError(
                f"there is no stage named {name!r} in pipeline {pipeline.name!r} (stages: {names})."
            )

        return self._cached("stage", f"{pipeline.pk}:{name}", find)

    def _first_stage(self, pipeline_id: int) -> int:
        def find() -> int:
            pk = (
                Pipeline.objects.get(pk=pipeline_id)
                .stages.order_by("position", "pk")
                .values_list("pk", flat=True)
                .first()
            )
            if pk is None:
                raise _CellError("Stage: the pipeline has no stages.")
            return pk

        return self._cached("first_stage", str(pipeline_id), find)


_LEAD_STATUSES = {
    **{value.lower(): value for value in LeadStatus.values},
    **{str(label).lower(): value for value, label in LeadStatus.choices},
}


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s_\-.#:]+", "", name.strip().strip('"').lower())


def parse_amount(raw: str) -> str:
    """An amount as the form expects it: ``$1,234.50`` and ``1.234,50 €`` → ``1234.50``."""
    value = re.sub(r"[^\d,.\-]", "", raw)
    if not value:
        return raw  # the form says why it is not a number
    if "," in value and "." in value:
        if value.rfind(",") > value.rfind("."):
            value = value.replace(".", "").replace(",", ".")
        else:
            value = value.replace(",", "")
    elif "," in value:
        whole, _, cents = value.rpartition(",")
        value = value.replace(",", "") if len(cents) == 3 and whole else value.replace(",", ".")
    return value


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%Y%m%d",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",
    "%b %d %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
)


def parse_date(raw: str) -> date:
    """A date in ISO form or a common one; day/month order must be unambiguous."""
    value = raw.strip()
    if re.match(r"\d{4}-\d{2}-\d{2}[T ]", value):
        value = value[:10]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    match = re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})", value)
    if match:
        a, b, year = (int(g) for g in match.groups())
        year += 2000 if year < 100 else 0
        if a > 12 >= b:
            day, month = a, b
        elif b > 12 >= a or a == b:
            month, day = a, b
        else:
            raise _CellError(
                f"{raw!r} could be day/month or month/day; write the date as YYYY-MM-DD."
            )
        try:
            return date(year, month, day)
        except ValueError:
            pass
    raise _CellError(f"{raw!r} is not a date; write it as YYYY-MM-DD.")


class _CountingReader(io.RawIOBase):
    """Bytes of ``raw`` after a prefix already read from it, counting what passes."""

    def __init__(self, raw: IO[bytes], prefix: bytes = b"") -> None:
        super().__init__()
        self.raw = raw
        self.prefix = prefix
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.prefix:
            n = min(len(buffer), len(self.prefix))
            buffer[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
        else:
            data = self.raw.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n


class _CsvFile:
    """A CSV source opened for streaming: its encoding, delimiter and lines."""

    def __init__(self, source: Source) -> None:
        self.warnings: list[str] = []
        self._owned: IO[Any] | None = None
        self._counter: _CountingReader | None = None
        self.total_bytes: int | None = None
        stream: IO[Any]
        if isinstance(source, str | os.PathLike):
            stream = self._owned = open(source, "rb")  # noqa: SIM115 - closed in __exit__
        else:
            stream = source
        if isinstance(stream.read(0), str):
            self.encoding = "text"
            text: IO[str] = stream
        else:
            text = self._decode(stream)
        sample = text.read(SAMPLE_BYTES)
        sample += text.readline()
        self.delimiter = detect_delimiter(sample)
        self.lines: Iterable[str] = itertools.chain(io.StringIO(sample, newline=""), text)

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def _decode(self, raw: IO[bytes]) -> IO[str]:
        start = raw.tell() if raw.seekable() else None
        if start is not None:
            self.total_bytes = raw.seek(0, io.SEEK_END) - start
            raw.seek(start)
        head = raw.read(SAMPLE_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            self.encoding = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16"
        else:
            self.encoding = self._guess(raw, head, start)
        if start is not None:
            raw.seek(start)
            head = b""
        self._counter = _CountingReader(raw, head)
        return io.TextIOWrapper(
            io.BufferedReader(self._counter), encoding=self.encoding, errors="replace", newline=""
        )

    def _guess(self, raw: IO[bytes], head: bytes, start: int | None) -> str:
        """UTF-8 when the file decodes as such, else Windows-1252, else Latin-1.

        A seekable file is checked whole (then read again); a pipe by its first bytes.
        """
        for encoding in ("utf-8", "cp1252"):
            chunks: Iterable[bytes] = [head]
            final = len(head) < SAMPLE_BYTES
            if start is not None:
                raw.seek(start)
                chunks, final = iter(lambda: raw.read(1 << 20), b""), True
            if _decodes(chunks, encoding, final):
                if encoding != "utf-8":
                    self.warnings.append(
                        "The file is not UTF-8; it was read as Windows-1252 (cp1252). "
                        "Check accented letters, or save it as UTF-8."
                    )
                return encoding
        self.warnings.append(
            "The file is neither UTF-8 nor Windows-1252; it was read as Latin-1. "
            "Check accented letters, or save it as UTF-8."
        )
        return "latin-1"

    def __enter__(self) -> _CsvFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned is not None:
            self._owned.close()


def _decodes(chunks: Iterable[bytes], encoding: str, final: bool) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for chunk in chunks:
            decoder.decode(chunk)
        decoder.decode(b"", final=final)
    except UnicodeDecodeError:
        return False
    return True


def detect_delimiter(sample: str) -> str:
    """Comma, semicolon or tab: the header line decides when it holds only one of them."""
    first_line = sample.splitlines()[0] if sample else ""
    present = [d for d in DELIMITERS if d in first_line]
    if len(present) == 1:
        return present[0]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    if present:
        return max(present, key=first_line.count)
    return ","
