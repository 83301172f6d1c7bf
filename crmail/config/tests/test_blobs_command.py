"""``crmail blobs verify | migrate | gc | usage``: the store that holds raw mail."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings

from crmail.blobs import store as blob_store
from crmail.blobs.models import Blob, Pack
from crmail.config.cli import main
from crmail.mail.models import Message, MessageRaw
from crmail.mail.store import pack, raw_bytes, store_many
from crmail.mailboxes.models import Folder, Location, Mailbox

pytestmark = pytest.mark.django_db


def mail(n: int) -> bytes:
    return f"From: a@x.test\r\nSubject: {n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode()


def pack_path(name: str) -> Path:
    return Path(settings.BLOB_URL.removeprefix("file:")) / name[:2] / f"{name}.pack"


def test_verify_says_all_good_then_names_the_message_whose_bytes_changed(capsys):
    stored = store_many([mail(1), mail(2)])
    assert main(["blobs", "verify"]) == 0
    assert "2 messages in files under" in capsys.readouterr().out
    blob = Blob.objects.select_related("pack").get(sha256=stored[1].sha256)
    path = pack_path(blob.pack.name)
    data = bytearray(path.read_bytes())
    data[blob.offset] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["blobs", "verify"]) == 1
    out = capsys.readouterr().out
    assert stored[1].sha256 in out and "changed" in out and stored[0].sha256 not in out


def test_verify_names_a_message_without_bytes(capsys):
    (message,) = store_many([mail(3)])
    Blob.objects.filter(sha256=message.sha256).delete()
    assert main(["blobs", "verify"]) == 1
    assert f"1 message without stored bytes (ids {message.pk})" in capsys.readouterr().out


def test_migrate_moves_the_raw_rows_of_an_earlier_release_and_mail_reads_the_same(capsys):
    # Messages as releases before the blob store kept them: bytes in MessageRaw rows.
    contents = [mail(n) for n in range(10, 17)]
    stored = store_many(contents)
    Blob.objects.all().delete()
    Pack.objects.all().delete()
    for message, raw in zip(stored, contents, strict=True):
        form, compression = pack(raw)
        MessageRaw.objects.create(message=message, raw=form, compression=compression)
    rows = list(Message.objects.order_by("pk"))
    assert [raw_bytes(m) for m in rows] == contents  # read from the rows
    assert main(["blobs", "migrate", "--batch", "3"]) == 0
    assert "Moved 7 messages into the blob store." in capsys.readouterr().out
    assert not MessageRaw.objects.exists()
    assert (Blob.objects.count(), Pack.objects.count()) == (7, 3)
    assert [raw_bytes(m) for m in Message.objects.order_by("pk")] == contents
    assert main(["blobs", "verify"]) == 0


def test_gc_removes_a_pack_a_crash_left_behind_once_it_is_old(capsys):
    # A sync wrote its pack and died before its rows committed: no row names the pack.
    written = blob_store.write([])
    path = pack_path(written.name)
    assert path.exists()
    assert main(["blobs", "gc"]) == 0
    assert path.exists()  # it may be a batch about to commit
    old = time.time() - blob_store.ORPHAN_SECONDS - 60
    os.utime(path, (old, old))
    assert main(["blobs", "gc"]) == 0
    assert "Removed 1 pack" in capsys.readouterr().out
    assert not path.exists()


def test_usage_counts_each_message_once_per_mailbox_and_once_per_user(capsys):
    from crmail.sharing.tests import build
    from tests import factories as f

    owner = f.user("owner@crmail.test")
    work, old = build.mailbox(owner), build.mailbox(owner, active=False)
    Mailbox.objects.filter(pk=work.pk).update(email="work@crmail.test")
    Mailbox.objects.filter(pk=old.pk).update(email="old@crmail.test")
    small, big = store_many([mail(30), mail(31) + b"x" * 5000])
    for message, box in ((small, work), (big, work), (big, old)):
        build.place(message, box)
    archive = Folder.objects.create(mailbox=work, remote_id="Archive", name="Archive")
    Location.objects.create(mailbox=work, folder=archive, remote_id="9", message=big)
    assert main(["blobs", "usage"]) == 0
    lines = [
        " ".join(line.replace("│", " ").split()) for line in capsys.readouterr().out.splitlines()
    ]
    sizes = small.size + big.size
    assert any(f"owner@crmail.test all 2 {sizes / 1000:,.1f} kB" in line for line in lines)
    assert any(f"work@crmail.test 2 {sizes / 1000:,.1f} kB" in line for line in lines)
    assert any(f"old@crmail.test 1 {big.size / 1000:,.1f} kB" in line for line in lines)


def test_a_blob_url_crmail_cannot_use_is_refused_in_words(tmp_path):
    from tests.operator import crmail, operator_environment

    env = operator_environment(tmp_path)
    done = crmail(env, "check", CRMAIL_BLOB_URL="ftp://mail.example.com/x")
    assert done.returncode == 1
    said = done.stdout + done.stderr
    assert "CRMAIL_BLOB_URL must be file:/path or s3://bucket/prefix" in said
    assert said.count("CRMAIL_BLOB_URL") == 1 and "Traceback" not in said
