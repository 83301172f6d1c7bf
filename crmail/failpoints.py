"""Named places where a test makes crmail die as a crash would (SIGKILL), to prove that
what was stored survives and the next run converges.

``CRMAIL_FAILPOINT=name`` in a process's environment kills it the first time it passes
``failpoint(name)``; ``name:N`` the N-th time. Unset (always, outside those tests), a
failpoint costs one dictionary lookup. The points, from the fetch to the parse results:

- ``pack-write``: a pack is half written (file store: before its fsync);
- ``pack-written``: the pack is durable, the transaction naming it not committed;
- ``index-commit``: the batch's rows are written, the transaction not committed;
- ``parse-save``: parse results are written, their transaction not committed;
- ``bodies-save``: bodies parsed after a first sync are written, their transaction (the
  ``bodies`` consumer's batch) not committed;
- ``dropbox-stored``: dropbox mail is stored, the receiver has not answered 250.

Mail crmail sends is stored the same way once its server has taken it: ``pack-written``
and ``index-commit`` then kill a process that sent a message and has not recorded it sent.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "CRMAIL_FAILPOINT"
_passed: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Kill this process here when the environment asks for ``name`` (see above)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _passed[name] += 1
    if _passed[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
