"""Importing records from CSV files: rows through the one writer, bad rows by line number."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest

from crmail.crm import importer
from crmail.crm.importer import ImportFailed, import_csv
from crmail.crm.models import Account, Contact, Deal, Lead
from tests import factories as f

pytestmark = pytest.mark.django_db


def csv_bytes(text: str, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(text.encode(encoding))


CONTACTS = (
    "First Name,Last Name,Email,Other Emails,Title\n"  # line 1
    "Ada,Lovelace,ada@example.com,,Countess\n"  # 2
    'Grace,"Hopper\n'  # 3: a quoted value over two lines
    'Murray",grace@example.com,,Admiral\n'  # 4
    "Bad,Address,not-an-address,,\n"  # 5
    "\n"  # 6: blank, skipped
    'Alan,"Turing\n'  # 7: a bad row that starts here
    '",alan@@example.com,,"Mathematician, logician"\n'  # 8
    ",,nobody@example.com,,\n"  # 9: no last name
)


def test_good_rows_are_imported_and_bad_rows_reported_with_their_line_numbers(org):
    report = import_csv("contacts", csv_bytes(CONTACTS), org.rep)

    assert (report.rows, report.imported, report.failed) == (5, 2, 3)
    assert [line for line, _ in report.errors] == [5, 7, 9]
    assert report.errors[0][1] == "Email: 'not-an-address' is not a valid email address."
    assert report.errors[1][1].startswith("Email: ")
    assert report.errors[2][1] == "Last Name: This field is required."
    grace = Contact.objects.get(first_name="Grace")
    assert grace.last_name == "Hopper\nMurray"
    assert grace.primary_email == "grace@example.com"
    assert grace.owner == org.rep and grace.created_by == org.rep


def test_atomic_import_keeps_nothing_when_one_row_fails(org):
    report = import_csv("contacts", csv_bytes(CONTACTS), org.rep, atomic=True)

    assert report.rolled_back and report.imported == 0 and report.valid == 2
    assert [line for line, _ in report.errors] == [5, 7, 9]
    assert not Contact.objects.exists()


def test_atomic_import_of_good_rows_keeps_them_all(org):
    text = "Last Name,Email\nOne,one@example.com\nTwo,two@example.com\n"
    report = import_csv("contacts", csv_bytes(text), org.rep, atomic=True)
    assert (report.imported, report.rolled_back) == (2, False)
    assert Contact.objects.count() == 2


def test_dry_run_checks_every_row_and_keeps_nothing(org):
    report = import_csv("contacts", csv_bytes(CONTACTS), org.rep, dry_run=True)
    assert (report.valid, report.failed, report.imported) == (2, 3, 0)
    assert not Contact.objects.exists()


def test_batches_keep_good_rows_around_a_bad_one(org):
    rows = "".join(f"Name{n},n{n}@example.com\n" for n in range(5))
    text = "Last Name,Email\n" + rows + "Bad,bad\n" + "After,after@example.com\n"
    report = import_csv("contacts", csv_bytes(text), org.rep, batch_size=2)
    assert (report.imported, report.errors[0][0]) == (6, 7)
    assert Contact.objects.count() == 6


def test_account_is_found_by_name_only_among_accounts_the_importer_may_see(org):
    f.account(org.peer, "Peer Corp")
    f.account(org.rep, "Rep Corp")
    text = "Last Name,Account Name\nOne,rep corp\nTwo,Peer Corp\n"

    report = import_csv("contacts", csv_bytes(text), org.rep)

    assert report.errors == [
        (3, "Account Name: there is no account named 'Peer Corp' that you can see.")
    ]
    assert Contact.objects.get().account.name == "Rep Corp"
    # The manager above both sees the peer's account, so may attach to it.
    assert import_csv("contacts", csv_bytes(text), org.manager).failed == 0


def test_an_account_name_shared_by_two_visible_accounts_is_refused(org):
    f.account(org.rep, "Acme")
    f.account(org.rep, "ACME")
    report = import_csv("contacts", csv_bytes("Last Name,Company\nX,Acme\n"), org.rep)
    assert report.errors == [
        (2, "Company: several accounts are named 'Acme'; link this one by hand.")
    ]


def test_secondary_emails_are_stored_normalised(org):
    text = 'Last Name,E-mail,Secondary Emails\nX,X@Example.COM," Y@Work.Example ; z@HOME.example"\n'
    import_csv("contacts", csv_bytes(text), org.rep)
    contact = Contact.objects.get()
    assert contact.primary_email == "x@example.com"
    assert contact.secondary_emails == ["y@work.example", "z@home.example"]


def test_utf8_file_with_byte_order_mark(org):
    text = "First Name,Last Name,Email\nZoë,Ångström,zoe@example.com\n"
    report = import_csv("contacts", csv_bytes(text, "utf-8-sig"), org.rep)
    assert report.encoding == "utf-8-sig" and not report.warnings and not report.errors
    assert Contact.objects.get().full_name == "Zoë Ångström"


def test_windows_1252_file_is_read_with_a_warning(org):
    text = "Last Name;Title\nMüller;Geschäftsführer \u2013 Vertrieb\n"
    report = import_csv("contacts", csv_bytes(text, "cp1252"), org.rep)
    assert report.encoding == "cp1252"
    assert "Windows-1252" in report.warnings[0]
    assert Contact.objects.get().title == "Geschäftsführer \u2013 Vertrieb"


def test_utf16_tab_separated_file_as_excel_saves_unicode_text(org):
    data = "Last Name\tEmail\nÖzil\toz@example.com\n".encode("utf-16")
    report = import_csv("contacts", io.BytesIO(data), org.rep)
    assert (report.encoding, report.delimiter, report.errors) == ("utf-16", "\t", [])
    assert Contact.objects.get().last_name == "Özil"


class Pipe(io.RawIOBase):
    """A stream that cannot seek and hands out a few bytes at a time, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data.read(min(len(buffer), 7))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_pipe_is_read_as_a_stream(org):
    data = "Last Name;Title\nMüller;Geschäftsführer\n".encode("cp1252")
    report = import_csv("contacts", io.BufferedReader(Pipe(data)), org.rep)
    assert (report.encoding, report.errors) == ("cp1252", [])
    assert Contact.objects.get().title == "Geschäftsführer"


def test_semicolon_delimited_file_with_commas_in_values(org):
    text = "Name;Website;Industry\nAcme, Inc.;https://www.Acme.example/about;Tools, hardware\n"
    report = import_csv("accounts", csv_bytes(text), org.rep)
    assert report.delimiter == ";" and not report.errors
    account = Account.objects.get()
    assert (account.name, account.domain, account.industry) == (
        "Acme, Inc.",
        "acme.example",
        "Tools, hardware",
    )


def test_tab_delimited_text_stream(org):
    text = "company_name\tphone\nTabs Ltd\t+44 20 7946 0000\n"
    report = import_csv("accounts", io.StringIO(text), org.rep)
    assert report.delimiter == "\t"
    assert Account.objects.get().phone == "+44 20 7946 0000"


def test_file_on_disk_reports_progress_up_to_its_size(org, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text("Account Name\n" + "".join(f"Account {n}\n" for n in range(50)))
    seen: list[importer.Progress] = []
    report = import_csv("accounts", path, org.rep, progress=seen.append)
    assert report.imported == 50
    assert [p.rows for p in seen] == list(range(1, 51))
    assert seen[-1].bytes_read == seen[-1].total_bytes == path.stat().st_size


def test_unknown_columns_are_a_warning_once(org):
    text = "Last Name,Shoe Size,Favourite Colour\nA,42,blue\nB,43,red\n"
    report = import_csv("contacts", csv_bytes(text), org.rep)
    assert report.imported == 2
    assert report.warnings == [
        "Columns not imported (no matching field): Shoe Size, Favourite Colour."
    ]


def test_a_file_with_no_known_column_is_refused(org):
    with pytest.raises(ImportFailed, match="No column of the file matches a field of deals"):
        import_csv("deals", csv_bytes("Colour,Size\nred,1\n"), org.rep)


def test_a_row_with_more_values_than_columns_is_reported(org):
    report = import_csv("contacts", csv_bytes("Last Name,Title\nA,B,C\nD,E,\n"), org.rep)
    assert [line for line, _ in report.errors] == [2]
    assert "3 values but the header has 2 columns" in report.errors[0][1]
    assert Contact.objects.get().last_name == "D"


def test_owner_column_and_default_owner(org):
    text = "Last Name,Owner\nA,PEER@crmail.test\nB,\nC,nobody@crmail.test\n"
    report = import_csv("leads", csv_bytes(text), org.manager, owner=org.rep)
    owners = dict(Lead.objects.values_list("last_name", "owner__email"))
    assert owners == {"A": "peer@crmail.test", "B": "rep@crmail.test"}
    assert report.errors == [
        (4, "Owner: there is no active user with the email 'nobody@crmail.test'.")
    ]


def test_lead_status_by_label_and_new_by_default(org):
    text = "Full Name,Company,Lead Status,Lead Source\nAda King,Engines,Contacted,Fair\nBo,X,,\n"
    report = import_csv("leads", csv_bytes(text), org.rep)
    assert not report.errors
    ada = Lead.objects.get(last_name="King")
    assert (ada.first_name, ada.company, ada.status, ada.source) == (
        "Ada",
        "Engines",
        "contacted",
        "Fair",
    )
    assert Lead.objects.get(last_name="Bo").status == "new"


def test_deals_with_stage_amount_date_and_contact_by_email(org):
    contact = f.contact(org.rep, "buyer@example.com")
    text = (
        "Deal Name,Stage,Amount,Closing Date,Contact Email,Account\n"
        'Big,Negotiation/Review,"$1,200.50",31/12/2025,BUYER@example.com,\n'
        "Small,,99,2025-01-15,,\n"
        "Odd,Dreaming,1,2025-01-01,,\n"
        "Vague,,1,03/04/2025,,\n"
        "Hidden,,1,,stranger@example.com,\n"
    )
    f.contact(org.peer, "stranger@example.com")

    report = import_csv("deals", csv_bytes(text), org.rep)

    big = Deal.objects.get(name="Big")
    assert (big.stage.name, big.amount, big.closing_date, big.contact) == (
        "Negotiation/Review",
        Decimal("1200.50"),
        date(2025, 12, 31),
        contact,
    )
    assert Deal.objects.get(name="Small").stage.name == "Qualification"
    assert [line for line, _ in report.errors] == [4, 5, 6]
    assert report.errors[0][1].startswith(
        "Stage: there is no stage named 'Dreaming' in pipeline 'Standard' (stages: Qualification"
    )
    assert "could be day/month or month/day" in report.errors[1][1]
    assert report.errors[2][1] == (
        "Contact Email: there is no contact with the email stranger@example.com that you can see."
    )


@pytest.mark.parametrize("module", importer.MODULES)
def test_every_form_field_can_be_named_by_its_own_name(module):
    from crmail.crm.forms import FORMS

    for name in FORMS[module].base_fields:
        assert importer.COLUMNS[module].get(importer._normalise_header(name)) == name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1200", "1200"),
        ("$1,200.50", "1200.50"),
        ("1.200,50 €", "1200.50"),
        ("12,5", "12.5"),
        ("1,234,567", "1234567"),
        ("-3", "-3"),
        ("lots", "lots"),
    ],
)
def test_amounts_in_common_notations(raw, expected):
    assert importer.parse_amount(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-04", date(2025, 3, 4)),
        ("2025-03-04T10:00:00Z", date(2025, 3, 4)),
        ("04.03.2025", date(2025, 3, 4)),
        ("25/12/2025", date(2025, 12, 25)),
        ("12/25/2025", date(2025, 12, 25)),
        ("4 Mar 2025", date(2025, 3, 4)),
        ("March 4, 2025", date(2025, 3, 4)),
        ("05/05/25", date(2025, 5, 5)),
    ],
)
def test_dates_in_common_notations(raw, expected):
    assert importer.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["03/04/2025", "31/31/2025", "soon"])
def test_ambiguous_or_impossible_dates_are_refused(raw):
    with pytest.raises(importer._CellError):
        importer.parse_date(raw)
