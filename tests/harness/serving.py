"""Local servers of the tests (stand-ins, receivers, proxies) served from a thread."""

from __future__ import annotations

import socketserver
import threading

# ``shutdown()`` waits for the serving loop's next poll: half a second by default, which
# every test using a stand-in paid at its teardown.
POLL_S = 0.05


def serve_in_thread(server: socketserver.BaseServer) -> threading.Thread:
    """Start serving ``server`` from a daemon thread; its ``shutdown()`` returns within
    ``POLL_S``."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_S}, daemon=True
    )
    thread.start()
    return thread
