"""Serving the webhook app on its own: uvicorn, in one process or several.

With several workers on Linux, each worker listens on a socket of its own, all bound to the
same port with ``SO_REUSEPORT``, and the kernel spreads new connections evenly over them.
uvicorn's own ``--workers`` shares one listening socket instead, and whichever worker wakes
first accepts every connection waiting: platforms deliver over a few long-lived keep-alive
connections, so one worker (one core, for CPU-bound Python) could end up serving nearly all
of them while the others idle. With 32 connections opened at once and two workers, splits
such as 28 to 4 or 30 to 2 were the common case.

The sockets listen from here, the supervising process: a port already in use fails at once,
connections made while a worker is still loading the app wait in its socket's queue (rather
than all going to the worker that was ready first), and a worker that dies is replaced on the
same socket, so the connections queued for it wait for the replacement instead of failing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from postpurchase.exceptions import ConfigError

APP = "postpurchase.webhooks.app:create_app"
_STOP_SECONDS = 30
_BACKLOG = 2048  # uvicorn's default
# Cyclic collections in a served worker (see _run): the young generation's threshold, and
# how many collections of the generation below start one of the next.
_YOUNG_THRESHOLD = 10_000
_OLDER_THRESHOLDS = (20, 100)

log = logging.getLogger(__name__)


def serve(*, host: str, port: int, workers: int, access_log: bool, app: str = APP) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status for the command.

    ``app`` is the factory's import string (another app runs under the same server settings,
    as the intake benchmark's minimal endpoint does).

    Raises ConfigError when the address cannot be listened on (in use, not local).
    """
    if workers == 1:
        server = uvicorn.Server(_config(app, access_log, host=host, port=port))
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: a second Ctrl-C
            _run(server)
        if not server.started:
            sys.exit(STARTUP_FAILURE)  # as uvicorn.run exits
        return 0
    if not sys.platform.startswith("linux"):
        # Elsewhere SO_REUSEPORT does not balance (or does not exist): uvicorn's own workers.
        uvicorn.run(
            app,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            log_level="info",
        )
        return 0
    try:
        _refuse_if_in_use(host, port)
        sockets = [_bind(host, port) for _ in range(workers)]
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return _supervise(sockets, access_log, app)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _refuse_if_in_use(host: str, port: int) -> None:
    """OSError (address in use) if anything listens on the port, another serve included.

    Sockets with SO_REUSEPORT would quietly join another server's group and share its
    connections; a plain bind fails as uvicorn's own would.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no user
        probe.bind((host, port))


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    return sock


def _config(app: str, access_log: bool, **where: Any) -> uvicorn.Config:
    return uvicorn.Config(app, factory=True, access_log=access_log, log_level="info", **where)


def _run(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    """Build the app, then serve it with what it is built from kept out of the cyclic GC.

    A process serving webhooks holds some 150,000 objects from its imports and the app, all
    alive until it exits; every full collection walked them all (about 0.1 s each, one every
    10,000 webhooks or so): some 5% of intake's CPU, and a pause for every request in flight.
    Frozen, collections see only what requests make.

    The webhooks in flight (dozens at once, each holding its decoded order, its event's
    models and its futures) keep the young generation over the default threshold of 700
    objects: a collection ran every five webhooks or so, and each found a cycle or two to
    free, nearly everything being freed by reference counting when its webhook is answered.
    A higher threshold (``_YOUNG_THRESHOLD``) collects as much, a few percent less CPU; what
    requests leave in cycles waits a little longer for it.
    """
    server.config.load()  # exits with uvicorn's own statuses when the app cannot be built
    gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, *_OLDER_THRESHOLDS)
    server.run(sockets=sockets)


def _run_worker(sock: socket.socket, access_log: bool, app: str) -> None:
    _run(uvicorn.Server(_config(app, access_log)), [sock])


def _supervise(sockets: list[socket.socket], access_log: bool, app: str) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start(sock: socket.socket) -> BaseProcess:
        process = context.Process(target=_run_worker, args=(sock, access_log, app))
        process.start()
        return process

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    processes = [start(sock) for sock in sockets]
    status = 0
    while not stopping.wait(0.5):
        for index, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:  # the app cannot start: retrying won't help
                log.error("worker %s could not start the app; stopping", process.pid)
                stopping.set()
                status = 1
                break
            log.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
            processes[index] = start(sockets[index])
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
    for process in processes:
        process.join(_STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    for sock in sockets:
        sock.close()
    return status
