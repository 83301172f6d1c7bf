"""Mail sharing's job: every minute, the visibility classes of the messages changed since
(decision 063). Reports stay exact whether or not it has run: a message changed since its
class was worked out is asked the rules directly, only more slowly. Two runs at once take
turns a batch at a time (``classes.classify``)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from crmail.sharing import classes


@db_periodic_task(crontab(minute="*"), name="sharing.classify")
def classify() -> None:
    classes.classify()
