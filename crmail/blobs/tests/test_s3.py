"""The blob store in S3-compatible storage: a local S3 server (moto's, in server mode;
crmail speaks plain S3 to it over HTTP), the same store, verify and collection."""

from __future__ import annotations

import pytest
from django.conf import settings

from crmail.blobs import store as blob_store
from crmail.blobs.backends import S3Backend
from crmail.blobs.models import Blob, Pack
from crmail.config.cli import main
from crmail.mail.models import Message
from crmail.mail.store import collect_blobs, raw_bytes, raw_bytes_many, store_many

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_server():  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_server, monkeypatch, settings):  # type: ignore[no-untyped-def]
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "crmail",
        "AWS_SECRET_ACCESS_KEY": "crmail-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="mail")
    settings.BLOB_URL = "s3://mail/crmail/"
    blob_store.backend.cache_clear()
    yield client
    blob_store.backend.cache_clear()
    for item in client.list_objects_v2(Bucket="mail").get("Contents", []):
        client.delete_object(Bucket="mail", Key=item["Key"])
    client.delete_bucket(Bucket="mail")


def mail(n: int, body: str = "") -> bytes:
    text = f"From: a@x.test\r\nSubject: {n}\r\nMessage-ID: <{n}@s3>\r\n\r\nbody {n} {body}\r\n"
    return text.encode()


def test_mail_is_stored_as_objects_and_read_back_exactly(s3_store, capsys):
    contents = [mail(n, "words " * n * 50) for n in range(6)]
    stored = store_many(contents)
    keys = [i["Key"] for i in s3_store.list_objects_v2(Bucket="mail")["Contents"]]
    (pack,) = Pack.objects.all()
    assert keys == [f"crmail/{pack.name[:2]}/{pack.name}.pack"]
    rows = list(Message.objects.filter(pk__in=[m.pk for m in stored]).order_by("pk"))
    assert raw_bytes_many(rows) == contents
    assert main(["blobs", "verify"]) == 0
    assert "6 messages in s3://mail/crmail/ match their hashes" in capsys.readouterr().out


def test_a_changed_object_is_caught_and_a_deleted_message_leaves_its_object(s3_store, capsys):
    keep, gone = store_many([mail(10), mail(11)])
    Message.objects.filter(pk=gone.pk).delete()
    collect_blobs([gone.sha256])
    assert list(Blob.objects.values_list("sha256", flat=True)) == [keep.sha256]
    (key,) = [i["Key"] for i in s3_store.list_objects_v2(Bucket="mail")["Contents"]]
    data = s3_store.get_object(Bucket="mail", Key=key)["Body"].read()
    assert mail(11) not in data and mail(10) in data  # small: stored as it is
    assert raw_bytes(Message.objects.get(pk=keep.pk)) == mail(10)
    s3_store.put_object(Bucket="mail", Key=key, Body=data.replace(b"body 10", b"body 99"))
    assert main(["blobs", "verify"]) == 1
    assert keep.sha256 in capsys.readouterr().out


def test_an_unreachable_store_is_said_in_words(s3_store, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    blob_store.backend.cache_clear()
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "Raw mail cannot be stored in s3://mail/crmail/" in out
    assert "Traceback" not in out


def test_a_bucket_name_is_required():
    settings_url = settings.BLOB_URL
    try:
        settings.BLOB_URL = "s3:///prefix"
        blob_store.backend.cache_clear()
        with pytest.raises(ValueError, match="s3://bucket/prefix"):
            blob_store.backend()
    finally:
        settings.BLOB_URL = settings_url
        blob_store.backend.cache_clear()


def test_the_backend_lists_packs_with_their_age(s3_store):
    backend = S3Backend("mail", "crmail", s3_store)
    backend.write("ab12", [b"da", b"ta"])
    assert [(name, age < 60) for name, age in backend.names()] == [("ab12", True)]
    assert backend.read("ab12", [(1, 2), (0, 1)]) == [b"at", b"d"]
