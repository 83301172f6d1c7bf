"""Labels by deal state (SPEC F8): Inbox mail from contacts sorted on the server under
"Deals Closing This Month", "Open Deals" and "Customers" (decision 044).

- ``categories``: which label a sender's mail belongs under, from the deals of the
  contacts the mailbox's owner may see, in the organisation's time zone;
- ``metadata``: what the sorter knows of a mailbox's mail: (remote id, From) pairs per
  folder, from the stored copies or from the minimal metadata of a mailbox that keeps none;
- ``sorting``: the labels made on the server, the moves planned and carried out (folders
  through ``MovesMessages``, labels through ``AppliesLabels``), each logged as a
  ``LabelMove``, undone from the log, and the labels removed again;
- ``tasks``: the sort of each mailbox every ten minutes, and soon after deals change
  (``receivers``, an outbox consumer).
"""
