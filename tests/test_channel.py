"""The Dask engine's direct connection to a shard (:mod:`control_dl.engines._channel`), over loopback."""

from __future__ import annotations

import socket
import threading
import time
from multiprocessing import AuthenticationError

import pytest

from control_dl.engines._channel import (
    ChannelError,
    connect_channel,
    encode_call,
    receive_answer,
    send_call,
    serve_channel,
)

KEY = b"k" * 32


class Target:
    def __init__(self) -> None:
        self.release = threading.Event()

    def add(self, a: float, b: float) -> float:
        return a + b

    def fail(self) -> None:
        raise FloatingPointError("from the shard")

    def unpicklable(self) -> object:
        return lambda: None

    def slow(self) -> str:
        self.release.wait(5)
        return "done"


def call(conn, method, *args):
    send_call(conn, method, encode_call(method, args))
    done, value = receive_answer(conn, 5.0)
    assert done
    return value


def test_calls_answer_in_order_and_errors_are_raised_as_on_the_shard():
    target = Target()
    with connect_channel(serve_channel(target, "127.0.0.1", KEY, 5.0, lambda: True), KEY, 5.0) as conn:
        assert call(conn, "add", 1.5, 2.0) == 3.5
        with pytest.raises(FloatingPointError, match="from the shard"):
            call(conn, "fail")
        with pytest.raises(RuntimeError, match="unpicklable: its answer does not pickle"):
            call(conn, "unpicklable")
        send_call(conn, "slow", encode_call("slow", ()))
        assert receive_answer(conn, 0.05) == (False, None)  # nothing yet: the caller checks the worker and waits on
        target.release.set()
        assert receive_answer(conn, 5.0) == (True, "done")
        assert call(conn, "add", 1, 1) == 2  # still in step


def test_a_caller_without_the_key_is_refused_and_the_driver_still_gets_through(caplog):
    address = serve_channel(Target(), "127.0.0.1", KEY, 5.0, lambda: True)
    with pytest.raises(AuthenticationError):
        connect_channel(address, b"x" * 32, 5.0)
    with connect_channel(address, KEY, 5.0) as conn:  # the port listened on for the driver
        assert call(conn, "add", 2, 2) == 4
    assert "failed authentication" in caplog.text
    time.sleep(0.1)
    with pytest.raises(ConnectionRefusedError):  # one driver per channel: then the port is closed
        connect_channel(address, KEY, 5.0)


def test_a_silent_peer_holds_the_port_at_most_the_handshake_time(monkeypatch):
    """A peer that connects and says nothing used to keep the serving thread (and the shard's
    data) until it hung up, and the driver's connection was refused."""
    from control_dl.engines import _channel

    monkeypatch.setattr(_channel, "HANDSHAKE_S", 0.3)
    address = serve_channel(Target(), "127.0.0.1", KEY, 5.0, lambda: True)
    with socket.create_connection(address):  # connected, silent
        time.sleep(0.05)
        start = time.monotonic()
        with connect_channel(address, KEY, 5.0) as conn:
            assert call(conn, "add", 1, 2) == 3
        assert time.monotonic() - start < 2.0


def test_the_driver_gives_up_on_a_port_that_never_authenticates():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        start = time.monotonic()
        with pytest.raises((EOFError, OSError)):
            connect_channel(silent.getsockname()[:2], KEY, 0.3)
        assert time.monotonic() - start < 2.0


def test_a_channel_nobody_dials_closes_its_port_after_the_timeout():
    address = serve_channel(Target(), "127.0.0.1", KEY, 0.1, lambda: True)
    time.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):
        connect_channel(address, KEY, 5.0)


def test_a_worker_that_stops_serving_closes_the_connection_unanswered():
    serving = threading.Event()
    serving.set()
    with connect_channel(serve_channel(Target(), "127.0.0.1", KEY, 5.0, serving.is_set), KEY, 5.0) as conn:
        assert call(conn, "add", 1, 2) == 3
        serving.clear()
        send_call(conn, "add", encode_call("add", (1, 2)))
        with pytest.raises(ChannelError, match="closed"):
            receive_answer(conn, 5.0)
