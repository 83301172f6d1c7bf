"""The shipped model files: written byte for byte the same from the same weights, read
back to the same answers; an installation without the ml extra offers the default tier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crmail.intelligence.analysis import MailText, analyse, available_tiers, features, model

pytestmark = pytest.mark.database_independent


def heads() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    out = {}
    for task, classes in (("intent", ["a", "b", "c"]), ("sentiment", ["x", "y"])):
        hashed = np.zeros((features.BUCKETS, len(classes)))
        hashed[rng.integers(0, features.BUCKETS, 50)] = rng.normal(size=(50, len(classes)))
        out[task] = {
            "classes": np.asarray(classes),
            "hashed": hashed,
            "dense": rng.normal(size=(len(features.DENSE_NAMES), len(classes))),
            "embed": np.zeros((0, len(classes))),
            "bias": rng.normal(size=len(classes)),
        }
    return out


def test_saving_is_deterministic_and_loads_back(tmp_path: Path) -> None:
    weights = heads()
    model.save(tmp_path / "one.npz", weights, {"tier": "default"})
    model.save(tmp_path / "two.npz", weights, {"tier": "default"})
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    loaded = model.load(tmp_path / "one.npz")
    assert loaded.heads["intent"].classes == ("a", "b", "c")
    np.testing.assert_allclose(
        loaded.heads["intent"].hashed, weights["intent"]["hashed"], rtol=1e-3, atol=1e-3
    )
    item = features.extract("Quote", "Please send the quote.", "en", False)
    probabilities = loaded.heads["sentiment"].probabilities([item])
    assert probabilities.shape == (1, 2) and abs(probabilities.sum() - 1) < 1e-6


def test_default_tier_is_always_there() -> None:
    assert available_tiers()[0] == "default"
    result = analyse([MailText("Unsubscribe", "Please remove me from your mailing list.")])[0]
    assert result.intent == "unsubscribe"
    assert result.version.startswith("default-")
    assert -1.0 <= result.sentiment_score <= 1.0
    assert analyse([]) == []
    blank = analyse([MailText("", "\n> quoted only\n")])[0]
    assert (blank.intent, blank.sentiment, blank.sentiment_score) == ("other", "neutral", 0.0)


def test_a_reply_with_nothing_written_has_no_intent_of_its_subject() -> None:
    """A reply that only quotes: its "Re:" subject is the answered message's words, not the
    sender's, so it is not classified by them; a subject of its own still is, and so is a
    reply written below the quote."""
    quoted = "On Mon, 2 Mar 2026 at 09:12, Jo <jo@example.com> wrote:\n> Please remove me.\n"
    nothing = analyse([MailText("Re: Unsubscribe", quoted)])[0]
    assert (nothing.intent, nothing.sentiment, nothing.reply_text) == ("other", "neutral", "")
    assert analyse([MailText("Unsubscribe", "")])[0].intent == "unsubscribe"
    below = analyse([MailText("Re: Newsletter", quoted + "\nPlease remove me from your list.")])
    assert below[0].intent == "unsubscribe"
    assert below[0].reply_text == "Please remove me from your list."


def test_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown analysis tier"):
        analyse([MailText("s", "t")], "large")  # type: ignore[arg-type]


def _unsubscribe_cue(text: str) -> float:
    dense = features.extract("", text, "en", False).dense
    return dense[features.DENSE_NAMES.index("unsubscribe")]


@pytest.mark.parametrize(
    "text",
    [
        "Please take us off your mailing list.",
        "Kindly remove info@example.in from all of your mailing lists.",
        "Unsubscribe me from the mailing list",
    ],
)
def test_asking_off_a_mailing_list_is_an_opt_out_cue(text: str) -> None:
    assert _unsubscribe_cue(text) > 0


@pytest.mark.parametrize(
    "text",
    [
        "I posted the patch to the mailing list yesterday.",
        "The mailing list archive is down again; has anyone a copy?",
        "Trust me, you do not want to run your own mailing lists.",
    ],
)
def test_talking_about_a_mailing_list_is_no_opt_out_cue(text: str) -> None:
    assert _unsubscribe_cue(text) == 0


def test_replies_and_forwards_subjects_as_other_mail_programs_write_them() -> None:
    assert features.is_reply_subject("[ILUG] Re: Email list management")
    assert features.is_reply_subject("[team] Fwd: pricing")
    assert features.is_reply_subject("Re[2]: Pricing")  # as The Bat! and Eudora write it
    assert features.is_reply_subject("Sun donates code to OpenSSL (fwd)")  # as Pine does
    assert not features.is_reply_subject("[team] Pricing for next year")
    assert not features.is_reply_subject("Pricing (first draft)")
    quoted = "On Mon, 2 Mar 2026 at 09:12, Jo <jo@example.com> wrote:\n> Please remove me.\n"
    nothing = analyse([MailText("[news] Re: Unsubscribe", quoted)])[0]
    assert nothing.intent == "other"
