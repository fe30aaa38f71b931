"""The sans-I/O session alone: bytes and time in, events and bytes out. No sockets, no loop."""
from __future__ import annotations

import random

import pytest

from socketiwa import seedwire, wire
from socketiwa.errors import (BackpressureError, FrameError, MessageTooLargeError,
                              NotSupportedError, SocketClosedError)
from socketiwa.session import (AckFailed, AckReceived, AckTimedOut, CloseInfo, CloseReceived,
                               EventReceived, MessageReceived, PeerClosed, ProtocolError,
                               ReadyState, Session, SocketiwaCodec)


def pair(mode="stream", **kw):
    a, b = Session(mode, **kw), Session(mode, **kw)
    a.connection_made()
    b.connection_made()
    return a, b


def test_ready_state_moves_only_forward():
    s = Session()
    assert s.ready_state is ReadyState.CONNECTING
    with pytest.raises(SocketClosedError):
        s.send(b"x")                                  # not open yet
    s.connection_made()
    assert s.ready_state is ReadyState.OPEN
    with pytest.raises(SocketClosedError):
        s.connection_made()                           # OPEN -> OPEN is not a move
    assert s.close() == b""                           # plain close sends nothing new
    assert s.ready_state is ReadyState.CLOSING
    with pytest.raises(SocketClosedError):
        s.close()
    with pytest.raises(SocketClosedError):
        s.emit("ev", (1,))
    assert s.terminate() == []
    assert s.ready_state is ReadyState.CLOSED and s.close_info == CloseInfo(1000, "")
    assert s.terminate() == []                        # idempotent
    with pytest.raises(SocketClosedError):
        s.close()


def test_event_with_args_and_ack_round_trip_over_a_split_stream():
    a, b = pair()
    raw, ack_id = a.emit("greet", ("py", 2, b"\x00bin", None), want_ack=True, now=10.0)
    assert ack_id != 0 and a.pending_acks == 1
    events = []
    for i in range(len(raw)):                         # one byte at a time
        events += b.receive_data(raw[i:i + 1])
    assert events == [EventReceived("greet", ("py", 2, b"\x00bin", None), ack_id)]
    reply = b.ack(ack_id, ("ok", [1]))
    (got,) = a.receive_data(reply)
    assert isinstance(got, AckReceived) and got.expected and got.args == ("ok", [1])
    assert got.value == ("ok", [1]) and a.pending_acks == 0
    assert a.next_deadline() is None                  # answered: nothing left to time out
    # a second answer to the same id is unexpected, not an error
    (again,) = a.receive_data(reply)
    assert isinstance(again, AckReceived) and not again.expected


def test_single_argument_uses_the_old_wire_format():
    a, _ = pair()
    raw, _ = a.emit("ev", ({"k": 1},))
    assert raw[4:] == wire.encode_event("ev", {"k": 1})   # what earlier versions send
    raw0, _ = a.emit("ev")
    assert wire.decode(raw0[4:]).args == () and raw0[4:] == wire.encode_event("ev")
    assert a.ack(3, (b"r",))[4:] == wire.encode_ack(3, b"r")
    env = wire.decode(wire.encode_event("ev", args=(1, "two")))
    assert env.args == (1, "two") and env.payload == (1, "two")


def test_merged_frames_decode_in_order():
    a, b = pair()
    stream = b"".join([a.send(b"one"), a.emit("ev", (1,))[0], a.send(b"two"),
                       a.emit("ev", ())[0]])
    assert b.receive_data(stream) == [MessageReceived(b"one"), EventReceived("ev", (1,)),
                                      MessageReceived(b"two"), EventReceived("ev", ())]


def test_ack_deadlines_are_data():
    a, _ = pair(ack_timeout=5.0)
    _, first = a.emit("slow", want_ack=True, now=100.0)
    _, second = a.emit("fast", want_ack=True, now=101.0, timeout=1.0)
    _, never = a.emit("patient", want_ack=True, now=101.0, timeout=1e9)
    assert a.next_deadline() == 102.0
    assert a.handle_timer(101.9) == []
    assert a.handle_timer(102.0) == [AckTimedOut(second, "fast")]
    assert a.next_deadline() == 105.0
    a.cancel_ack(first)
    assert a.next_deadline() == 101.0 + 1e9           # the cancelled one left no deadline
    assert a.handle_timer(200.0) == []
    assert a.terminate() == [AckFailed(never, "patient")]


def test_ack_timeout_none_never_expires_and_pending_is_bounded():
    a, _ = pair(ack_timeout=None, max_pending_acks=3)
    ids = [a.emit("e", want_ack=True)[1] for _ in range(3)]
    assert len(set(ids)) == 3 and a.next_deadline() is None
    with pytest.raises(BackpressureError):
        a.emit("e", want_ack=True)
    a.emit("e")                                       # no ack wanted: not bounded by pending


def test_reserved_names_are_refused_both_ways():
    a, b = pair()
    for name in ("open", "message", "error", "close", "connect", "disconnect", "connection"):
        with pytest.raises(ValueError):
            a.emit(name)
        (ev,) = b.receive_data(wire.frame(wire.encode_event(name, 1)))
        assert isinstance(ev, ProtocolError) and type(ev.error) is FrameError


def test_hostile_stream_input_is_one_typed_error_each_and_the_stream_goes_on():
    _, b = pair(max_message=64)
    bad = [wire.frame(b"garbage"), wire.frame(b"SIW1\x00\x00\x00\x00\x00\x01" + b"1"),
           (65).to_bytes(4, "big") + b"x" * 65, b"\x00\x00\x00\x00",
           wire.frame(wire.encode_event("ev", 1)[:-1] + b"\xff"),
           wire.frame(b"SIW1\x01\x00\x00\x00\x00\x03\x02ev" + b"\x01\x00\x00\x00\x09"),  # cut part
           wire.frame(b"SIW1\x03\x00\x00\x00\x00\x01" + b'[1000]'),                       # bad CLOSE
           wire.frame(b"SIW1\x04\x00\x00\x00\x00\x00x")]                                  # kind 4
    events = b.receive_data(b"".join(bad) + wire.frame(wire.encode_data(b"after")))
    assert [type(e) for e in events] == [ProtocolError] * len(bad) + [MessageReceived]
    assert all(isinstance(e.error, FrameError) for e in events[:-1])
    assert isinstance(events[2].error, MessageTooLargeError)
    assert events[-1].data == b"after"
    assert b.ready_state is ReadyState.OPEN


def test_random_bytes_never_raise_and_buffer_stays_bounded():
    rng = random.Random(9)
    _, b = pair(max_message=256)
    for _ in range(3000):
        chunk = rng.randbytes(rng.randrange(1, 300))
        for ev in b.receive_data(chunk):
            assert isinstance(ev, (ProtocolError, MessageReceived, EventReceived, AckReceived,
                                   CloseReceived))
        assert b.buffered <= 256 + 4
    d = Session("datagram")
    d.connection_made()
    for _ in range(3000):
        data = (wire.MAGIC if rng.random() < 0.5 else b"") + rng.randbytes(rng.randrange(40))
        for ev in d.receive_datagram(data, "127.0.0.1", 9):
            if isinstance(ev, ProtocolError):
                assert ev.error.data == data and ev.address == "127.0.0.1"


def test_end_of_stream_inside_a_frame_and_close_codes():
    a, b = pair()
    b.receive_data(a.send(b"whole")[:6])
    cut, closed = b.receive_eof()
    assert isinstance(cut, ProtocolError) and "inside a frame" in str(cut.error)
    assert closed == PeerClosed(CloseInfo(1005, ""))
    # close(code, reason): the CLOSE envelope tells the peer why
    a, b = pair()
    bye = a.close(4001, "shutting down")
    assert a.close_info == CloseInfo(4001, "shutting down")
    assert b.receive_data(bye) == [CloseReceived(4001, "shutting down")]
    assert b.receive_eof() == [PeerClosed(CloseInfo(4001, "shutting down"))]
    assert b.close_info["code"] == 4001 and b.close_info["reason"] == "shutting down"
    # a connection lost to an error
    _, c = pair()
    err = ConnectionResetError("reset by peer")
    (lost,) = c.receive_eof(err)
    assert lost.info.code == 1006 and "reset" in lost.info.reason and lost.error is err
    with pytest.raises(ValueError):
        pair()[0].close(70000)
    with pytest.raises(TypeError):
        pair()[0].close(1000, 5)


def test_input_after_close_is_discarded():
    a, b = pair()
    b.close()
    assert b.receive_data(a.send(b"late")) == []
    assert b.receive_eof() == []


def test_datagram_mode_plain_escaped_and_limits():
    a, b = pair("datagram")
    assert a.send(b"plain") == b"plain"                      # raw: any UDP peer reads it
    escaped = a.send(b"SIW1 looks like an envelope")
    assert escaped != b"SIW1 looks like an envelope"
    assert b.receive_datagram(escaped, "::1", 5) == [
        MessageReceived(b"SIW1 looks like an envelope", "::1", 5)]
    assert b.receive_datagram(b"", "h", 1) == [MessageReceived(b"", "h", 1)]
    with pytest.raises(NotSupportedError):
        a.send(b"")
    with pytest.raises(MessageTooLargeError):
        a.send(b"x" * 65508)
    with pytest.raises(MessageTooLargeError):
        a.emit("ev", (b"x" * 65500,))
    raw, ack_id = a.emit("ev", (1, 2), want_ack=True)
    (ev,) = b.receive_datagram(raw, "10.0.0.1", 7)
    assert ev == EventReceived("ev", (1, 2), ack_id, "10.0.0.1", 7)
    assert a.receive_datagram(b.ack(ack_id, ()), "10.0.0.2", 8)[0].value is None


def test_raw_stream_has_no_envelopes():
    a = Session(framing="raw")
    a.connection_made()
    assert a.send(b"SIW1 raw") == b"SIW1 raw"
    assert a.receive_data(b"\x00\x00\x00\x05hello") == [MessageReceived(b"\x00\x00\x00\x05hello")]
    with pytest.raises(NotSupportedError):
        a.emit("ev")
    assert a.close(1000, "x") == b""                          # nothing to say it with
    with pytest.raises(ValueError):
        Session("datagram", framing="raw")


def test_empty_message_on_a_seed_stream_is_nothing_to_write():
    """The seed's TCP wire has no envelope for plain data, so b"" is zero bytes to write (as the
    seed sends it), not the datagram error; on UDP the same codec still refuses it."""
    stream = Session("stream", codec=seedwire.SEED_CODEC)
    stream.connection_made()
    assert stream.send(b"") == b""
    assert stream.send(b"x") == b"x"
    datagram = Session("datagram", codec=seedwire.SEED_CODEC)
    datagram.connection_made()
    with pytest.raises(NotSupportedError):
        datagram.send(b"")


def test_codec_is_replaceable():
    """A codec of a different format (here: newline-separated text) drives the same session."""
    class LineCodec(SocketiwaCodec):
        name = "lines"

        def encode_event(self, name, args, ack_id):
            return f"E {ack_id} {name} {wire.json.dumps(list(args))}".encode()

        def encode_ack(self, ack_id, args):
            return f"A {ack_id} {wire.json.dumps(list(args))}".encode()

        def frame(self, envelope, max_message):
            return envelope + b"\n"

        def stream_decoder(self, max_message):
            codec = self

            class Lines:
                buffered = 0
                buf = b""

                def feed(self, chunk):
                    self.buf += chunk
                    *lines, self.buf = self.buf.split(b"\n")
                    self.buffered = len(self.buf)
                    return [codec.parse(line) for line in lines]

                def end(self):
                    return FrameError("cut") if self.buf else None
            return Lines()

        def parse(self, line):
            kind, ack_id, rest = line.decode().split(" ", 2)
            if kind == "E":
                name, args = rest.split(" ", 1)
                return wire.Envelope(wire.KIND_EVENT, int(ack_id), name, None,
                                     tuple(wire.json.loads(args)))
            if kind == "A":
                return wire.Envelope(wire.KIND_ACK, int(ack_id), "", None,
                                     tuple(wire.json.loads(rest)))
            return FrameError("bad line", line)

    a, b = pair(codec=LineCodec())
    raw, ack_id = a.emit("hi", (1, "x"), want_ack=True)
    assert raw == f"E {ack_id} hi [1, \"x\"]\n".encode()
    assert b.receive_data(raw[:5]) == []
    first, bad = b.receive_data(raw[5:] + b"Q 0 x\n")
    assert first == EventReceived("hi", (1, "x"), ack_id)
    assert isinstance(bad, ProtocolError) and bad.error.data == b"Q 0 x"
    events = b.receive_data(raw)
    assert events == [EventReceived("hi", (1, "x"), ack_id)]
    assert a.receive_data(b.ack(ack_id, ("ok",)))[0].value == "ok"
