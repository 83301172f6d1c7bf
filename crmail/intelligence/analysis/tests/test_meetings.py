"""Meeting times in the five languages, resolved against the message's date in the
sender's zone, with the offset of the meeting's own day across summer-time changes."""

from __future__ import annotations

from datetime import datetime

import pytest

from crmail.intelligence.analysis import meetings

pytestmark = pytest.mark.database_independent


def starts(text: str, sent: str, zone: str | None) -> list[tuple[str, bool]]:
    found = meetings.extract(text, datetime.fromisoformat(sent), zone)
    return [(m.start.isoformat(), m.approximate) for m in found]


@pytest.mark.parametrize(
    ("text", "sent", "zone", "expected"),
    [
        # Chicago, a Thursday in March: "Thursday" is next week's.
        ("Thursday at 3pm works.", "2026-03-12T09:14:00-05:00", "America/Chicago",
         [("2026-03-19T15:00:00-05:00", False)]),
        # Sent before Europe's change (29 March), for a day after it: +01:00 becomes +02:00.
        ("Passt Ihnen am Dienstag um 8:30 Uhr?", "2026-03-27T16:45:00+01:00", "Europe/Berlin",
         [("2026-03-31T08:30:00+02:00", False)]),
        # New York before the November change: the Monday after it is at -05:00.
        ("How about Monday, November 2 at 10:30 am?", "2026-10-28T15:20:00-04:00",
         "America/New_York", [("2026-11-02T10:30:00-05:00", False)]),
        # Sydney's change in October goes the other way: +10:00 to +11:00.
        ("Monday 5 October at 10am suits me.", "2026-10-01T14:03:00+10:00", "Australia/Sydney",
         [("2026-10-05T10:00:00+11:00", False)]),
        ("Next Wednesday afternoon would be ideal.", "2026-08-13T10:25:00+08:00", "Australia/Perth",
         [("2026-08-19T14:00:00+08:00", True)]),
        ("Tomorrow at 11 then.", "2026-10-07T16:45:00+08:00", "Australia/Perth",
         [("2026-10-08T11:00:00+08:00", False)]),
        # "at 2" in business hours is 14:00.
        ("Tuesday at 2 is fine.", "2026-10-29T16:40:00-03:00", "America/Halifax",
         [("2026-11-03T14:00:00-04:00", False)]),
        ("Geht auch am Donnerstag nächste Woche um 10 Uhr?", "2026-03-26T12:09:00+01:00",
         "Europe/Berlin", [("2026-04-02T10:00:00+02:00", False)]),
        ("Wie wäre nächsten Dienstagvormittag?", "2026-04-21T09:02:00+02:00", "Europe/Berlin",
         [("2026-04-28T09:00:00+02:00", True)]),
        ("Am 5. November um 10 Uhr bei Ihnen?", "2026-10-08T09:08:00+02:00", "Europe/Vienna",
         [("2026-11-05T10:00:00+01:00", False)]),
        ("Je vous propose jeudi à 14h30.", "2026-03-24T08:05:00+01:00", "Europe/Paris",
         [("2026-03-26T14:30:00+01:00", False)]),
        ("Oui, mardi prochain à 11 h me convient.", "2026-10-29T15:05:00-04:00", "America/Toronto",
         [("2026-11-03T11:00:00-05:00", False)]),
        ("¿Le va bien el lunes a las 10:00?", "2026-04-08T12:10:00-06:00", "America/Mexico_City",
         [("2026-04-13T10:00:00-06:00", False)]),
        ("Podemos falar na quarta-feira às 9h?", "2026-03-25T12:30:00-03:00", "America/Sao_Paulo",
         [("2026-04-01T09:00:00-03:00", False)]),
        ("Pode ser amanhã às 14h?", "2026-02-25T12:07:00-03:00", "America/Sao_Paulo",
         [("2026-02-26T14:00:00-03:00", False)]),
        # Without a zone name the date's own offset is used.
        ("Friday morning?", "2026-06-24T18:20:00+05:30", None,
         [("2026-06-26T09:00:00+05:30", True)]),
    ],
)  # fmt: skip
def test_meeting_times(
    text: str, sent: str, zone: str | None, expected: list[tuple[str, bool]]
) -> None:
    assert starts(text, sent, zone) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Unser Einkauf braucht es bis Freitag als PDF.",  # a deadline
        "Please send the quote by Friday.",  # a day without a time
        "Bitte senden Sie es bis spätestens 15.05.2026, 12:00 Uhr.",  # a deadline with a time
        "We were charged 1.428,00 EUR on 01.04. and on 02.04.",  # dates and an amount
        "Merci de rappeler avant jeudi midi.",
    ],
)
def test_no_meeting(text: str) -> None:
    assert starts(text, "2026-03-26T12:00:00+01:00", "Europe/Berlin") == []


def test_the_words_it_was_read_from() -> None:
    found = meetings.extract(
        "Hey Sam, Thursday at 3pm works great.",
        datetime.fromisoformat("2026-04-14T13:51:00-04:00"),
        "America/New_York",
    )
    assert [m.text for m in found] == ["Thursday at 3pm"]
