"""socketiwa.h3's pure parts, by themselves: RFC 9297 capsules split anywhere, oversize
capsules refused with a typed error, header normalisation, WebTransport error-code mapping,
the ticket's stored form."""
import datetime

import pytest

from socketiwa.errors import InvalidOptionError, MessageTooLargeError
from socketiwa.h3 import CapsuleParser, encode_capsule
from socketiwa.h3._protocol import normalize_headers
from socketiwa.h3.tickets import ticket_from_dict, ticket_to_dict
from socketiwa.h3.webtransport import code_from_http3, code_to_http3


def test_capsules_split_at_every_byte():
    stream = encode_capsule(0x2843, (4000).to_bytes(4, "big") + b"bye") + encode_capsule(0x17, b"") \
        + encode_capsule(0x3C2999C1687CF2C, b"g" * 300)
    for cut in range(len(stream) + 1):
        parser = CapsuleParser()
        got = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert got == [(0x2843, (4000).to_bytes(4, "big") + b"bye"), (0x17, b""),
                       (0x3C2999C1687CF2C, b"g" * 300)]
        assert parser.pending == 0


def test_oversize_capsule_is_a_typed_error_with_the_bytes():
    parser = CapsuleParser(max_capsule=100)
    with pytest.raises(MessageTooLargeError) as info:
        parser.feed(encode_capsule(0x2843, b"x" * 101))
    assert info.value.data.startswith(b"\x68\x43")     # 0x2843 as a 2-byte varint


def test_headers_are_lower_cased_and_checked():
    assert normalize_headers({"X-Test": "a", b"Accept": b"b"}) == [(b"x-test", b"a"), (b"accept", b"b")]
    assert normalize_headers([("n", 5)]) == [(b"n", b"5")]
    with pytest.raises(InvalidOptionError):
        normalize_headers({"x-bad": "one\r\ntwo"})
    with pytest.raises(InvalidOptionError):
        normalize_headers({"": "empty name"})


def test_webtransport_codes_map_into_http3_and_back():
    for code in (0, 1, 9, 0x1D, 0x1E, 0x1F, 42, 255, 4242, 0xFFFFFFFF):
        assert code_from_http3(code_to_http3(code)) == code
    assert code_to_http3(0) == 0x52E4A40FA8DB
    assert code_from_http3(0x52E4A40FA8DB + 0x1E) is None    # a GREASE code point carries none
    assert code_from_http3(0x10C) is None                    # a plain HTTP/3 code
    with pytest.raises(InvalidOptionError):
        code_to_http3(1 << 32)


def test_ticket_survives_its_stored_form():
    from aioquic.tls import CipherSuite, SessionTicket
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    ticket = SessionTicket(age_add=7, cipher_suite=CipherSuite.AES_128_GCM_SHA256,
                           not_valid_after=now + datetime.timedelta(days=1), not_valid_before=now,
                           resumption_secret=b"s" * 32, server_name="localhost", ticket=b"t" * 40,
                           max_early_data_size=0xFFFFFFFF, other_extensions=[(0x39, b"\x01\x02")])
    assert ticket_from_dict(ticket_to_dict(ticket)) == ticket
