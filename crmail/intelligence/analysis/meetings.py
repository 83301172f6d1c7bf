"""Meeting times a message mentions, read by rules in English, German, French, Spanish and
Portuguese, and resolved against the message's date in the sender's time zone.

A mention is a day ("Thursday", "next Tuesday", "tomorrow", "March 19", "am 5. November",
"jeudi 12 mars", "el lunes 30", "quarta, dia 3") with a time of day close to it ("at 3pm",
"um 15 Uhr", "à 14h30", "a las 10:00", "às 9h", or "morning" / "Nachmittag" / "soir" …,
which give an approximate start: 09:00, 14:00, 18:00). A day without a time ("send it by
Friday") is a deadline, not a meeting. The start is built in the sender's zone with
``zoneinfo``, so a time after a change to or from summer time has the offset of its own
day.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmail.intelligence.analysis import Meeting

WEEKDAYS: dict[str, int] = {}
for _index, _names in enumerate(
    [
        "monday montag lundi lunes segunda segunda-feira",
        "tuesday tues dienstag mardi martes terça terca terça-feira terca-feira",
        "wednesday mittwoch mercredi miércoles miercoles quarta quarta-feira",
        "thursday thurs donnerstag jeudi jueves quinta quinta-feira",
        "friday freitag vendredi viernes sexta sexta-feira",
        "saturday samstag samedi sábado sabado",
        "sunday sonntag dimanche domingo",
    ]
):
    for _name in _names.split():
        WEEKDAYS[_name] = _index

MONTHS: dict[str, int] = {}
for _index, _names in enumerate(
    [
        "january jan januar jänner janvier enero janeiro",
        "february feb februar février fevrier febrero fevereiro fev",
        "march mar märz maerz mars marzo março marco",
        "april apr avril abril abr",
        "may mai mayo maio",
        "june jun juni juin junio junho",
        "july jul juli juillet julio julho",
        "august aug août aout agosto ago",
        "september sep sept septembre septiembre setembro set",
        "october oct oktober okt octobre octubre outubro out",
        "november nov novembre noviembre novembro",
        "december dec dezember dez décembre decembre diciembre dic dezembro",
    ],
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _index

_PARTS_OF_DAY = {
    # part of the day → the start it stands for
    "morning": 9, "vormittag": 9, "vormittags": 9, "morgens": 9, "matin": 9, "matinée": 9,
    "manhã": 9, "mañana": 9,
    "late morning": 11, "fin de matinée": 11, "späten vormittag": 11,
    "afternoon": 14, "nachmittag": 14, "nachmittags": 14, "après-midi": 14, "tarde": 14,
    "mittag": 12, "mittags": 12, "midi": 12, "noon": 12, "lunchtime": 12,
    "evening": 18, "abend": 18, "abends": 18, "soir": 18, "soirée": 18, "noche": 18,
    "noite": 18, "fim da tarde": 18, "late afternoon": 17, "end of the day": 17,
    "fin d'après-midi": 17, "spätnachmittag": 17, "späten nachmittag": 17,
}  # fmt: skip

_WEEKDAY = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_PART = "|".join(sorted((re.escape(p) for p in _PARTS_OF_DAY), key=len, reverse=True))

_NEXT_WEEK = (
    r"next week|nächste[nr]? woche|kommende[nr]? woche|la semaine prochaine|"
    r"semaine prochaine|la semana que viene|la próxima semana|la semana próxima|"
    r"próxima semana|semana que vem"
)
# "(next) Tuesday(, March 31)", "Dienstagvormittag", "jeudi prochain", "quinta, dia 3 de abril"
_DAY = re.compile(
    rf"(?P<next_week_before>(?:{_NEXT_WEEK})[\s,]+(?:(?:on|am|le|el|na|no)\s+)?)?"
    r"(?:(?:next|this|coming|nächste[nrs]?|kommende[nrs]?|diese[nrs]?|el próximo|"
    r"la próxima|próximo|próxima|este|esta|ce)\s+)?"
    rf"(?P<weekday>{_WEEKDAY})(?P<compound>vormittag|nachmittag|abend|morgen|mittag)?\b"
    r"(?:\s+(?:prochain|prochaine|que viene|que vem|próximo|próxima))?"
    rf"(?P<next_week_after>[\s,]+(?:{_NEXT_WEEK}|in der nächsten woche))?"
    r"(?:,?\s+(?:(?:the|den|le|el|dia|día)\s+)?"
    r"(?:(?P<wd_day>\d{1,2})(?:st|nd|rd|th|er)?\.?(?:\s*(?:de\s+)?(?P<wd_month>"
    + _MONTH
    + r")\b\.?)?"
    r"|(?P<wd_dm>\d{1,2})\.(?P<wd_mm>\d{1,2})\.(?:\d{2,4})?"
    rf"|(?P<wd_month2>{_MONTH})\.?\s+(?P<wd_day2>\d{{1,2}})(?:st|nd|rd|th)?\b))?",
    re.IGNORECASE,
)
_DATE = re.compile(
    rf"\b(?:(?P<month>{_MONTH})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|(?P<day2>\d{{1,2}})(?:st|nd|rd|th|er)?\.?\s*(?:de\s+|of\s+)?(?P<month2>{_MONTH})\b\.?"
    r"|(?P<dm>\d{1,2})\.(?P<mm>\d{1,2})\.(?:20\d\d)?)",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"\b(?P<word>day after tomorrow|übermorgen|après-demain|pasado mañana|depois de amanhã|"
    r"tomorrow|demain|(?<!la )(?<!por la )mañana|amanhã|(?<!guten )morgen(?!s)|"
    r"today|heute|aujourd'hui|aujourd\u2019hui|hoy|hoje)\b",
    re.IGNORECASE,
)
_RELATIVE_DAYS = {
    "day after tomorrow": 2, "übermorgen": 2, "après-demain": 2, "pasado mañana": 2,
    "depois de amanhã": 2, "tomorrow": 1, "demain": 1, "mañana": 1, "amanhã": 1,
    "morgen": 1, "today": 0, "heute": 0, "aujourd'hui": 0, "aujourd\u2019hui": 0, "hoy": 0,
    "hoje": 0,
}  # fmt: skip
_AMPM = r"(?P<ampm>[ap]\.?\s?m\b\.?)"
# A clock time: needs a preposition ("at 2", "um 11"), a suffix ("3pm", "15 Uhr", "14h30")
# or minutes ("9:30") to be told from other numbers.
_CLOCK = re.compile(
    r"(?:(?P<prep>\b(?:at|around|um|gegen|ab|à|a|vers|a las|a la|sobre las|às|as|pelas)\s+))?"
    r"(?P<hour>[01]?\d|2[0-3])"
    r"(?:(?:[:.](?P<minute>[0-5]\d))?\s*" + _AMPM + r"|"
    r"\s?h\s?(?P<hminute>[0-5]\d)?\b(?!\w)|"
    r"[:.](?P<minute2>[0-5]\d)(?:\s*(?:uhr|h|hs|horas))?\b|"
    r"\s*(?P<uhr>uhr|horas|hs)\b)?",
    re.IGNORECASE,
)
_WINDOW = re.compile(
    r"\b(?:between|zwischen|entre)\s+(?:las\s+)?(?P<hour>[01]?\d|2[0-3])(?:[:.h](?P<minute>[0-5]\d))?"
    r"\s*(?:" + _AMPM + r"|uhr|h)?\s+(?:and|und|et|y|e|bis|à|a)\s+(?:las\s+)?"
    r"(?P<hour2>[01]?\d|2[0-3])(?:[:.h][0-5]\d)?\s*(?P<ampm2>[ap]\.?\s?m\b\.?)?",
    re.IGNORECASE,
)
_PART_RE = re.compile(
    rf"\b(?:in the |am |le |en |por la |en la |de |pela |à |a la |no |na )?(?P<part>{_PART})\b",
    re.IGNORECASE,
)
# Words before a day that make it a deadline or a past time, not a meeting: "bis spätestens
# 15.05.", "avant jeudi midi", "seit heute Mittag".
_NOT_A_MEETING = re.compile(
    r"\b(?:by|until|till|before|no later than|bis|bis spätestens|spätestens|seit|since|"
    r"avant|d'ici|depuis|antes de|antes del|hasta|desde|até|antes de|a partir de)"
    r"(?:\s+(?:the|le|el|la|o|a|am|dem|zum|on))?\s*$",
    re.IGNORECASE,
)
_BREAK = re.compile(r"[.!?;]\s|\n\s*\n|\?")
_NEAR_AFTER = 40  # characters between a day and its time ("Thursday 5 November at 11:00")
_NEAR_BEFORE = 20  # a time before its day ("at 3pm on Thursday")
MAX_TEXT = 4_000  # characters read: meetings are proposed near the top of a reply
# (the labelled set's longest reply is 513 characters; 20,000 cost 7 ms a message)


@dataclass
class _Found:
    start: int
    end: int
    hour: int = 0
    minute: int = 0
    approximate: bool = False
    day: date | None = None


def _zone(sent: datetime, time_zone: str | None) -> tzinfo:
    if time_zone:
        try:
            return ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return sent.tzinfo or ZoneInfo("UTC")


def extract(text: str, sent: datetime | None, time_zone: str | None = None) -> list[Meeting]:
    """The meetings a text proposes, in the order they are mentioned."""
    if sent is None or not text:
        return []
    text = text[:MAX_TEXT]
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=ZoneInfo("UTC"))
    zone = _zone(sent, time_zone)
    today = sent.astimezone(zone).date()
    days = _days(text, today)
    times = _times(text)
    meetings: list[Meeting] = []
    used: set[int] = set()
    for day in days:
        if day.day is None or _NOT_A_MEETING.search(text[max(0, day.start - 25) : day.start]):
            continue
        if day.approximate:  # "Dienstagvormittag": the day word holds its time
            time: _Found | None = day
        else:
            time = _time_for(text, day, times, used)
        if time is None:
            continue
        start = datetime(
            day.day.year, day.day.month, day.day.day, time.hour, time.minute, tzinfo=zone
        )
        span = (min(day.start, time.start), max(day.end, time.end))
        if any(m.start == start for m in meetings):
            continue
        meetings.append(Meeting(start, text[span[0] : span[1]].strip(), time.approximate))
    return meetings


def _time_for(text: str, day: _Found, times: list[_Found], used: set[int]) -> _Found | None:
    best: tuple[int, int] | None = None
    # ``times`` is sorted by start: only those near the day are looked at.
    first = bisect.bisect_left(times, day.start - _NEAR_BEFORE - 200, key=lambda t: t.start)
    for i in range(first, len(times)):
        time = times[i]
        if time.start > day.end + _NEAR_AFTER:
            break
        if i in used:
            continue
        if time.start >= day.end:
            gap = text[day.end : time.start]
            distance = time.start - day.end
            if distance > _NEAR_AFTER or _BREAK.search(gap):
                continue
        elif time.end <= day.start:
            gap = text[time.end : day.start]
            distance = day.start - time.end
            if distance > _NEAR_BEFORE or _BREAK.search(gap):
                continue
        else:
            continue
        # A clock time beats a part of the day ("fin de matinée, disons 11h").
        rank = distance + (1000 if time.approximate and time.hour != 0 else 0)
        if best is None or rank < best[0]:
            best = (rank, i)
    if best is None:
        return None
    used.add(best[1])
    return times[best[1]]


_TOKEN = re.compile(r"[^\W\d_]+(?:-feira)?")
_DOTTED_DATE = re.compile(r"\d\.\d")
_ANY_WEEKDAY = re.compile(_WEEKDAY)


def _days(text: str, today: date) -> list[_Found]:
    found: list[_Found] = []
    taken: list[tuple[int, int]] = []
    lowered = text.lower()
    words = set(_TOKEN.findall(lowered))
    # The patterns are long: a message naming no weekday (no month) skips them.
    has_weekday = bool(_ANY_WEEKDAY.search(lowered))
    has_date = bool(words & MONTHS.keys()) or bool(_DOTTED_DATE.search(text))
    for match in _DAY.finditer(text) if has_weekday else ():
        weekday = WEEKDAYS[match["weekday"].lower()]
        day = _explicit(match, today, "wd_")
        if day is None:
            if match["next_week_before"] or match["next_week_after"]:
                monday = today + timedelta(days=7 - today.weekday())
                day = monday + timedelta(days=weekday)
            else:
                ahead = (weekday - today.weekday()) % 7 or 7
                day = today + timedelta(days=ahead)
        item = _Found(match.start(), match.end(), day=day)
        if match["compound"]:
            part = match["compound"].lower()
            item.hour = 9 if part in ("vormittag", "morgen") else _PARTS_OF_DAY[part]
            item.approximate = True
        found.append(item)
        taken.append((match.start(), match.end()))
    for match in _DATE.finditer(text) if has_date else ():
        if any(a <= match.start() < b for a, b in taken):
            continue
        day = _explicit(match, today, "")
        if day is not None:
            found.append(_Found(match.start(), match.end(), day=day))
            taken.append((match.start(), match.end()))
    for match in _RELATIVE.finditer(text):
        if any(a <= match.start() < b for a, b in taken):
            continue
        shift = _RELATIVE_DAYS[match["word"].lower().replace("\u2019", "'")]
        found.append(_Found(match.start(), match.end(), day=today + timedelta(days=shift)))
    found.sort(key=lambda f: f.start)
    return found


def _explicit(match: re.Match[str], today: date, prefix: str) -> date | None:
    """The date a match spells out ("March 19", "31.03.", "lunes 30"), the next one from
    ``today`` on; None when it spells none (or an impossible one)."""
    groups = match.groupdict()
    month_name = groups.get(prefix + "month") or groups.get(prefix + "month2")
    day_text = groups.get(prefix + "day") or groups.get(prefix + "day2")
    month = MONTHS.get(month_name.lower()) if month_name else None
    if groups.get(prefix + "dm"):
        day_text, month = groups[prefix + "dm"], int(groups[prefix + "mm"])
    if not day_text:
        return None
    day_number = int(day_text)
    try:
        if month is None:  # the day of the month alone: this month or the next
            candidate = today.replace(day=day_number) if day_number >= today.day else None
            if candidate is None:
                first = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
                candidate = first.replace(day=day_number)
            return candidate
        candidate = date(today.year, month, day_number)
    except ValueError:
        return None
    if candidate < today - timedelta(days=60):  # "January 5" written in December
        try:
            candidate = candidate.replace(year=today.year + 1)
        except ValueError:
            return None
    return candidate


def _times(text: str) -> list[_Found]:
    found: list[_Found] = []
    for match in _WINDOW.finditer(text):
        hour = _hour(int(match["hour"]), match["ampm"] or match["ampm2"])
        found.append(
            _Found(match.start(), match.end(), hour, int(match["minute"] or 0), approximate=True)
        )
    windows = [(f.start, f.end) for f in found]
    for match in _CLOCK.finditer(text):
        if any(a <= match.start() < b for a, b in windows):
            continue
        minute = match["minute"] or match["hminute"] or match["minute2"]
        marked = match["ampm"] or match["uhr"] or minute is not None
        dotted = match["minute2"] and text[match.end("hour")] == "."
        if dotted and not text[match.end("minute2") : match.end()].strip():
            continue  # "02.04" is a date; "9.30 Uhr" a time
        suffix = text[match.end("hour") : match.end()].strip().lower()
        if not (marked or suffix.startswith("h") or match["prep"]):
            continue
        if _is_date_part(text, match):
            continue
        hour = _hour(int(match["hour"]), match["ampm"])
        found.append(_Found(match.start(), match.end(), hour, int(minute or 0)))
    for match in _PART_RE.finditer(text):
        part = match["part"].lower()
        found.append(_Found(match.start(), match.end(), _PARTS_OF_DAY[part], 0, approximate=True))
    found.sort(key=lambda f: f.start)
    return found


def _is_date_part(text: str, match: re.Match[str]) -> bool:
    """A number that is part of a date or an amount, not a time: "31.03.", "1.428,00"."""
    after = text[match.end() : match.end() + 3]
    before = text[max(0, match.start() - 1) : match.start()]
    if re.match(r"\.\d|\.\s?(?:" + _MONTH + r")\b|,\d", after, re.IGNORECASE):
        return True
    if re.match(r"\.\d{1,2}\.", text[match.start("hour") :]):  # 31.03.
        return True
    return before in ("/", "-", "€", "$", "£")


def _hour(hour: int, ampm: str | None) -> int:
    if ampm:
        pm = ampm.lower().startswith("p")
        if pm and hour < 12:
            return hour + 12
        if not pm and hour == 12:
            return 0
        return hour
    if 1 <= hour <= 7:  # "at 2": business hours are in the afternoon
        return hour + 12
    return hour
