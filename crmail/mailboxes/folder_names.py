"""Where a folder crmail creates goes among the server's folders."""

from __future__ import annotations

from crmail.mailboxes.drivers.base import RemoteFolder


def new_folder_path(folders: list[RemoteFolder], name: str) -> str:
    """``name``, or ``INBOX.<name>`` on servers that keep every folder under the Inbox
    (Courier, some Dovecot set-ups: a folder beside the Inbox would be refused)."""
    others = [f for f in folders if f.remote_id.upper() != "INBOX"]
    inbox = next((f for f in folders if f.remote_id.upper() == "INBOX"), None)
    if inbox is not None and others:
        prefix = inbox.remote_id + inbox.delimiter
        if all(f.remote_id.startswith(prefix) for f in others):
            return prefix + name
    return name
