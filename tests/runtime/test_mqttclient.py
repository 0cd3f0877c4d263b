"""The collector's buffered MQTT reads: the same bytes as the socket's, fewer calls."""

from __future__ import annotations

import socket

import pytest

from footfall_runtime.mqttclient import _ReadBuffered


def test_buffered_reads_return_the_stream_in_order_and_report_what_is_pending() -> None:
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        sock = _ReadBuffered(b)
        a.sendall(bytes(range(256)) * 4)
        assert sock.recv(1) == b"\x00"  # one system call, the rest kept
        assert sock.pending() == 1023
        got = sock.recv(300)
        assert got == bytes(range(1, 256)) + bytes(range(45))
        rest = b""
        while sock.pending():
            rest += sock.recv(100)
        assert sock.pending() == 0
        assert b"\x00" + got + rest == bytes(range(256)) * 4
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # nothing buffered, nothing on the socket: as paho expects
        a.close()
        assert sock.recv(1) == b""  # end of stream
    finally:
        a.close()
        b.close()
