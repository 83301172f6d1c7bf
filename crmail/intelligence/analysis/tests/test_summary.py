"""A long thread's summary: its key sentences, taken as written from the messages' own
new text (never from quotes, greetings or signatures), in thread order."""

from __future__ import annotations

import pytest

from crmail.intelligence.analysis import MailText, summarise

pytestmark = pytest.mark.database_independent

THREAD = [
    MailText(
        "Renewal of 40 seats",
        "Hi Marcus,\n\nOur renewal for the 40 seats is due at the end of March. "
        "Finance asked whether the renewal price for 40 seats stays the same. "
        "The weather in Chicago has been awful.\n\nThanks,\nDana\n\n--\nDana Whitfield\n"
        "Operations Manager\n+1 312 555 0147\n",
    ),
    MailText(
        "Re: Renewal of 40 seats",
        "Hi Dana,\n\nThe renewal price for 40 seats stays the same if you renew before March 31. "
        "I can also add the onboarding package at no cost.\n\nBest,\nMarcus\n\n"
        "On Mon, Mar 2, 2026 at 9:00 AM Dana <dana@example.com> wrote:\n"
        "> Our renewal for the 40 seats is due at the end of March.\n",
    ),
    MailText(
        "Re: Renewal of 40 seats",
        "Hi Marcus,\n\nGreat, please send the renewal quote for 40 seats so we can sign "
        "before March 31. Lunch was nice by the way.\n\nDana\n\n"
        "On Tue, Mar 3, 2026 at 10:00 AM Marcus <m@example.com> wrote:\n> Hi Dana,\n",
    ),
]


def test_summary_sentences_come_from_the_thread_in_order() -> None:
    summary = summarise(THREAD, max_sentences=3)
    assert summary.startswith(
        "Finance asked whether the renewal price for 40 seats stays the same."
    )
    assert "The renewal price for 40 seats stays the same if you renew before March 31." in summary
    assert "please send the renewal quote for 40 seats" in summary
    # Off-topic sentences, greetings, signatures and quotes are left out.
    for absent in ("weather", "Lunch", "Hi Marcus", "+1 312", "wrote:"):
        assert absent not in summary


def test_summary_length_and_empty_threads() -> None:
    assert len(summarise(THREAD, max_sentences=1).split(". ")) == 1
    assert summarise([]) == ""
    assert summarise([MailText("Hi", "Thanks!")]) == ""
