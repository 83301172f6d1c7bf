"""``crmail serve`` (web app and embedded job worker) and ``crmail worker`` (jobs alone)."""

from __future__ import annotations

import argparse
import errno
import signal
import socket
from types import FrameType
from typing import Any

from crmail.config.commands.base import CommandError, Output, require_ready

ALL_ADDRESSES = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognised, not bound


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the web app and a job worker in one process",
        description=(
            "Serve crmail over HTTP with waitress and run background jobs in the same "
            "process: the single-machine default. Stop it with Ctrl-C or SIGTERM."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument(
        "--port", type=port_number, default=8000, help="port to listen on (%(default)s)"
    )
    serve.add_argument(
        "--workers", type=positive, default=2, help="job worker threads (%(default)s)"
    )
    serve.add_argument(
        "--threads", type=positive, default=8, help="web request threads (%(default)s)"
    )
    add_watch_option(serve)
    serve.set_defaults(handler=run_serve, needs_django=True)

    worker = commands.add_parser(
        "worker",
        help="run a job worker alone, beside `crmail serve` on other machines",
        description=(
            "Run background jobs without the web app, to spread the work over several "
            "processes or machines sharing the database and queue. Of all running workers, "
            "only one at a time enqueues the periodic jobs. Ctrl-C or SIGTERM stop it once "
            "the jobs under way are done; a second one stops it at once."
        ),
    )
    worker.add_argument("--workers", type=positive, default=4, help="worker threads (%(default)s)")
    worker.add_argument(
        "--no-periodic",
        action="store_true",
        help="never enqueue periodic jobs from this process",
    )
    add_watch_option(worker)
    worker.set_defaults(handler=run_worker, needs_django=True)


def add_watch_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="do not keep IMAP IDLE connections for new mail here (other processes may)",
    )


def positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def port_number(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port number is between 1 and 65535")
    return value


def _stop(signum: int, frame: FrameType | None) -> None:
    # waitress's loop ends on KeyboardInterrupt; SIGTERM gets the same clean shutdown.
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    import waitress
    from huey.contrib.djhuey import HUEY

    from crmail.config.wsgi import application
    from crmail.jobs.consumer import make_consumer
    from crmail.people.actions import first_admin
    from crmail.sharing import classes

    server = listen(waitress, application, args.host, args.port, args.threads)
    consumer = None
    if HUEY.immediate:
        out.warn("CRMAIL_QUEUE_URL is memory://: jobs run inside the web requests that queue them.")
    else:
        consumer = make_consumer(args.workers, periodic=True, embedded=True)
    previous = signal.signal(signal.SIGTERM, _stop)
    watcher = dropbox = None
    try:
        if consumer is not None:
            consumer.start()
        watcher = start_watcher(args)
        dropbox = start_dropbox()
        classes.warm()  # reports' first look at the visibility classes, ahead of them
        host, port = bound_address(server)
        url = address_url(host, port)
        admin = first_admin()
        who = f" — sign in as {admin.email}" if admin else " — add an administrator: crmail init"
        out.done(f"crmail is running on {url}{who}")
        if host in ALL_ADDRESSES:
            out.note(f"Listening on every network address, port {port}.")
        jobs = f"{args.workers} job workers" if consumer else "no job workers"
        watching = ", watching mailboxes for new mail" if watcher else ""
        out.note(f"{args.threads} web threads, {jobs}{watching}. Press Ctrl-C to stop.")
        if dropbox is not None:
            out.note(f"The dropbox receiver takes mail on {dropbox.host}:{dropbox.port}.")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        out.note("Stopping…")
        server.close()
        if dropbox is not None:
            dropbox.stop()
        if watcher is not None:
            watcher.stop()
        if consumer is not None:
            consumer.stop(graceful=True)
            release_periodic_lease()
        signal.signal(signal.SIGTERM, previous)
    out.done("crmail has stopped.")
    return 0


def listen(waitress: Any, application: Any, host: str, port: int, threads: int) -> Any:
    """Bind the port before anything else starts, and say in words why it cannot be."""
    try:
        # The application itself applies or removes X-Forwarded-* (crmail.config.proxy), by
        # the networks of CRMAIL_TRUSTED_PROXIES; waitress must leave them to it.
        return waitress.create_server(
            application,
            host=host,
            port=port,
            threads=threads,
            clear_untrusted_proxy_headers=False,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"Port {port} on {host} is already in use by another program.",
                hint="Stop that program, or choose another port with --port.",
            ) from None
        if exc.errno == errno.EACCES:
            raise CommandError(
                f"Not allowed to listen on port {port}.",
                hint="Ports below 1024 need administrator rights: use a port like 8000 behind "
                "a reverse proxy.",
            ) from None
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise CommandError(
                f"Cannot listen on {host!r}: this machine has no such address.",
                hint="Use 127.0.0.1 (this machine only) or 0.0.0.0 (every address).",
            ) from None
        raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None


def bound_address(server: Any) -> tuple[str, int]:
    """The address actually bound (several when a name such as localhost has two)."""
    if hasattr(server, "effective_listen"):
        host, port = server.effective_listen[0]
    else:
        host, port = server.effective_host, server.effective_port
    return str(host), int(port)


def address_url(host: str, port: int) -> str:
    """The URL to open in a browser on this machine for a listening address."""
    if host in ALL_ADDRESSES:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_worker(args: argparse.Namespace, out: Output) -> int:
    require_ready()
    from huey.contrib.djhuey import HUEY

    from crmail.jobs.consumer import make_consumer

    if HUEY.immediate:
        raise CommandError(
            "CRMAIL_QUEUE_URL is memory://: jobs run inside the process that queues them, "
            "so a worker would have nothing to do.",
            hint="Use the default SQLite queue, or Redis or PostgreSQL for several machines.",
        )
    consumer = make_consumer(args.workers, periodic=not args.no_periodic, embedded=False)
    periodic = (
        "never enqueues periodic jobs"
        if args.no_periodic
        else "enqueues periodic jobs while no other process does"
    )
    watcher = start_watcher(args)
    watching = "; it watches mailboxes for new mail" if watcher else ""
    out.done(f"crmail worker is running with {args.workers} threads; it {periodic}{watching}.")
    out.note("Press Ctrl-C to stop.")
    try:
        consumer.run()
    finally:
        if watcher is not None:
            watcher.stop()
        release_periodic_lease()
    out.done("The worker has stopped.")
    return 0


def start_watcher(args: argparse.Namespace) -> Any:
    """The IDLE watcher of this process (docs/decisions/011), unless --no-watch."""
    if args.no_watch:
        return None
    from crmail.mailboxes.watcher import Watcher

    watcher = Watcher()
    watcher.start()
    return watcher


def start_dropbox() -> Any:
    """The dropbox's SMTP receiver (decision 052), when CRMAIL_DROPBOX_PORT is set."""
    from django.conf import settings

    if not settings.CRMAIL_DROPBOX_PORT:
        return None
    from crmail.config.commands.dropbox import start_receiver

    return start_receiver(settings.CRMAIL_DROPBOX_HOST, settings.CRMAIL_DROPBOX_PORT)


def release_periodic_lease() -> None:
    """Let another process take over the periodic jobs at once instead of after the TTL."""
    from django.db import DatabaseError, close_old_connections

    from crmail.jobs import leases
    from crmail.jobs.consumer import PERIODIC_LEASE, LeaderScheduler

    try:
        leases.release(PERIODIC_LEASE, LeaderScheduler.holder)
    except DatabaseError:
        pass
    finally:
        close_old_connections()
