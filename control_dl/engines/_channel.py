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

import logging
import pickle
import socket
import threading
from collections.abc import Callable
from multiprocessing.connection import AuthenticationError, Connection, answer_challenge, deliver_challenge
from typing import Any

logger = logging.getLogger(__name__)


class ChannelError(ConnectionError):
    """The connection to a shard broke or its worker stopped serving (the shard may be lost)."""


def _connection(sock: socket.socket) -> Connection:
    """A blocking :class:`multiprocessing.connection.Connection` over a connected TCP socket."""
    sock.setblocking(True)
    return Connection(sock.detach())


def serve_channel(target: Any, host: str, key: bytes, timeout: float, serving: Callable[[], bool]) -> tuple[str, int]:
    """Listen on ``host`` for one connection and serve calls of ``target``'s methods from it in a thread.

    Parameters
    ----------
    target : object
        Whose methods the calls run (the shard's actor).
    host : str
        Interface to listen on (the worker's host, reachable from the driver).
    key : bytes
        Shared secret of the HMAC challenge; a connection that does not know it is dropped.
    timeout : float
        Seconds to wait for the connection; then the port is closed and the thread ends.
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
    listener.settimeout(timeout)
    thread = threading.Thread(target=_serve, args=(listener, target, key, serving), daemon=True)
    thread.name = "control-dl-channel"
    thread.start()
    address = listener.getsockname()
    return str(address[0]), int(address[1])


def _serve(listener: socket.socket, target: Any, key: bytes, serving: Callable[[], bool]) -> None:
    """Accept the one connection, authenticate both ways, then answer calls until it closes."""
    with listener:
        try:
            sock, _ = listener.accept()
        except OSError:  # the driver never connected (socket.timeout is an OSError)
            return
    with _connection(sock) as conn:
        try:
            deliver_challenge(conn, key)
            answer_challenge(conn, key)
        except (AuthenticationError, EOFError, OSError):
            logger.warning("a connection to a Dask engine shard failed authentication; channel closed")
            return
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
        Seconds to wait for the TCP connection (a firewall between driver and worker drops it).

    Returns
    -------
    multiprocessing.connection.Connection
        The connection; :func:`call` uses it.

    Raises
    ------
    OSError
        The worker's address cannot be reached from this process.
    multiprocessing.AuthenticationError
        The other end does not know the key.
    """
    conn = _connection(socket.create_connection(address, timeout=timeout))
    try:
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
    except BaseException:
        conn.close()
        raise
    return conn


def send_call(conn: Connection, method: str, args: tuple[Any, ...]) -> None:
    """Send one call to the shard.

    Raises
    ------
    ChannelError
        The connection is broken.
    """
    try:
        conn.send((method, args))
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
