r"""A direct, authenticated connection between the driver and one shard of the Dask engine.

Dask's actor calls cost about 2 ms of a driver's CPU and 1 ms of a worker's per call on a local
cluster (distributed's Python comm stack: framing, metrics, (de)serialisation, two event loops),
and an empty call to two shards takes 1.07 ms; over these connections 0.06 ms, and ring's
2-worker f+grad (S = 10⁵) takes 17.2–18.4 ms instead of 19.0–20.0 (docs/benchmarks/dask.md).
Data-parallel trainers on Dask split the work the same way: Dask places the workers and their
data, connections of their own carry the per-iteration reductions (XGBoost's and LightGBM's Dask
interfaces open their own sockets between workers).

The transport is the standard library's :mod:`multiprocessing.connection` over one TCP socket
per shard: its framing and pickling, and its HMAC challenge in both directions with a random key
that only the driver and the actor hold (sent through Dask), so nothing else that reaches the
port can call the shard. Like Dask's own tcp comm, the payload is not encrypted: the engine does
not open these connections on TLS clusters (``Dask(transport="auto")``).

One call at a time: the driver sends ``(method, args)``, the worker's serving thread runs
``target.method(*args)`` and answers ``(True, value)`` or ``(False, exception)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import AuthenticationError, Connection, answer_challenge, deliver_challenge
from multiprocessing.reduction import ForkingPickler
from typing import Any

logger = logging.getLogger(__name__)


#: Seconds a connection to a shard's port may take to authenticate (the driver's takes milliseconds):
#: a peer that connects and stays silent holds the port at most this long.
HANDSHAKE_S = 2.0


class ChannelError(ConnectionError):
    """The connection to a shard broke or its worker stopped serving (the shard may be lost)."""


def _authenticated(sock: socket.socket, key: bytes, timeout: float, server: bool) -> Connection:
    """A blocking :class:`multiprocessing.connection.Connection` over ``sock``, after the HMAC challenge
    both ways (the server challenges first), which must complete within ``timeout`` seconds.

    A peer that connects and stays silent would block the challenge's reads for good: a timer shuts
    the socket down when the time is up, which ends them with an ``EOFError``.

    Raises
    ------
    multiprocessing.AuthenticationError
        The peer does not know the key.
    EOFError, OSError
        The peer hung up, or stayed silent past ``timeout``.
    """
    sock.setblocking(True)
    conn = Connection(os.dup(sock.fileno()))  # the Connection owns the copy; ``sock`` stays for the timer
    lock, done = threading.Lock(), threading.Event()

    def expire() -> None:
        with lock, contextlib.suppress(OSError):  # the peer may have hung up already
            if not done.is_set():
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        if server:
            deliver_challenge(conn, key)
            answer_challenge(conn, key)
        else:
            answer_challenge(conn, key)
            deliver_challenge(conn, key)
    except BaseException:
        conn.close()
        raise
    finally:
        with lock:
            done.set()
        timer.cancel()
        sock.close()
    return conn


def serve_channel(target: Any, host: str, key: bytes, timeout: float, serving: Callable[[], bool]) -> tuple[str, int]:
    """Listen on ``host`` for the driver's connection and serve calls of ``target``'s methods from it in a thread.

    Parameters
    ----------
    target : object
        Whose methods the calls run (the shard's actor).
    host : str
        Interface to listen on (the worker's host, reachable from the driver).
    key : bytes
        Shared secret of the HMAC challenge; a connection that does not know it is dropped and the
        port keeps listening for the driver's.
    timeout : float
        Seconds to wait for the driver's authenticated connection; then the port is closed and the
        thread ends.
    serving : callable
        Checked before every call: once it returns False (the worker is closing) the connection is
        closed unanswered, so the driver sees the shard lost rather than a worker that is gone
        still answering.

    Returns
    -------
    tuple of (str, int)
        The address to connect to.
    """
    listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    address = listener.getsockname()  # before the thread may close it
    thread = threading.Thread(target=_serve, args=(listener, target, key, timeout, serving), daemon=True)
    thread.name = "control-dl-channel"
    thread.start()
    return str(address[0]), int(address[1])


def _accept(listener: socket.socket, key: bytes, timeout: float) -> Connection | None:
    """The first connection that authenticates within ``timeout`` seconds, or None; the port is closed.

    Each connection gets :data:`HANDSHAKE_S` seconds to authenticate; one that fails is dropped and
    the port listens on, so a stranger can neither take the driver's place nor hold it for long.
    """
    deadline = time.monotonic() + timeout
    with listener:
        while (left := deadline - time.monotonic()) > 0:
            listener.settimeout(left)
            try:
                sock, peer = listener.accept()
            except OSError:  # socket.timeout is an OSError: the driver never connected
                return None
            try:
                return _authenticated(sock, key, min(HANDSHAKE_S, max(deadline - time.monotonic(), 0.1)), server=True)
            except (AuthenticationError, EOFError, OSError):
                logger.warning("a connection from %s to a Dask engine shard failed authentication", peer)
    return None


def _serve(listener: socket.socket, target: Any, key: bytes, timeout: float, serving: Callable[[], bool]) -> None:
    """Accept the driver's connection, then answer calls until it closes."""
    conn = _accept(listener, key, timeout)
    if conn is None:
        return
    with conn:
        while True:
            try:
                method, args = conn.recv()
            except (EOFError, OSError):  # the driver closed the engine, or went away
                return
            if not serving():
                return
            try:
                answer: tuple[bool, Any] = (True, getattr(target, method)(*args))
            except Exception as exc:
                answer = (False, exc)
            try:
                conn.send(answer)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:  # raised before anything is sent
                what = "its answer" if answer[0] else f"the error it raised, {answer[1]!r},"
                conn.send((False, RuntimeError(f"{method}: {what} does not pickle ({exc})")))
            except OSError:
                return


def connect_channel(address: tuple[str, int], key: bytes, timeout: float) -> Connection:
    """Connect to a shard's :func:`serve_channel` and authenticate both ways.

    Parameters
    ----------
    address : tuple of (str, int)
        What :func:`serve_channel` returned.
    key : bytes
        The key given to :func:`serve_channel`.
    timeout : float
        Seconds to wait for the TCP connection (a firewall between driver and worker drops it), and
        again for the authentication.

    Returns
    -------
    multiprocessing.connection.Connection
        The connection; :func:`send_call` and :func:`receive_answer` use it.

    Raises
    ------
    OSError
        The worker's address cannot be reached from this process.
    EOFError
        The other end hung up or stayed silent during the authentication.
    multiprocessing.AuthenticationError
        The other end does not know the key.
    """
    return _authenticated(socket.create_connection(address, timeout=timeout), key, timeout, server=False)


def encode_call(method: str, args: tuple[Any, ...]) -> memoryview:
    """``(method, args)`` pickled as :meth:`Connection.send` would, once for every shard it goes to.

    Parameters
    ----------
    method : str
        The shard's method.
    args : tuple
        Its arguments (w: n_params floats).

    Returns
    -------
    memoryview
        What :func:`send_call` sends; the serving thread's ``recv`` unpickles it.
    """
    return ForkingPickler.dumps((method, args))


def send_call(conn: Connection, method: str, call: memoryview) -> None:
    """Send one call (from :func:`encode_call`) to the shard.

    Raises
    ------
    ChannelError
        The connection is broken.
    """
    try:
        conn.send_bytes(call)
    except OSError as exc:
        raise ChannelError(f"the connection to the shard broke while sending {method}: {exc}") from exc


def receive_answer(conn: Connection, wait: float) -> tuple[bool, Any]:
    """The answer to the call sent last, waiting up to ``wait`` seconds.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        The shard's connection.
    wait : float
        Seconds to wait before giving up for now.

    Returns
    -------
    tuple
        ``(False, None)`` when nothing arrived within ``wait``; else ``(True, value)``.

    Raises
    ------
    ChannelError
        The connection closed (the worker stopped serving or died) or broke.
    Exception
        Whatever the shard's method raised, re-raised here.
    """
    try:
        if not conn.poll(wait):
            return False, None
        ok, value = conn.recv()
    except (EOFError, OSError) as exc:
        raise ChannelError(f"the connection to the shard closed: {exc!r}") from exc
    if not ok:
        raise value
    return True, value
