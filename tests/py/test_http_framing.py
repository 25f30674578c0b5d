"""Request framing as RFC 9112 says, decided by llhttp, compared with h11 for the same bytes.

Each case is the bytes of one request and what RFC 9112 requires of a server: accept (answer
it), reject (400 and close) or either (the RFC allows both; the answer must then frame the body
exactly as sent, or be a 400). The same bytes go to h11, the reference parser: where h11's
decision differs from the RFC's the case names it (h11 is lenient in a few places the RFC allows
or forbids), so the comparison is written down, not hidden.
"""

from __future__ import annotations

import json
import time

import pytest
from _http_util import echo_server, exchange, h11_accepts, read_responses

ACCEPT, REJECT, EITHER = "accept", "reject", "either"
H = b"Host: x\r\n"


def post(headers: bytes, body: bytes) -> bytes:
    return b"POST /e HTTP/1.1\r\n" + H + headers + b"\r\n" + body


CHUNKED = b"Transfer-Encoding: chunked\r\n"
HELLO = b"5\r\nhello\r\n0\r\n\r\n"

# id: (bytes, RFC 9112's verdict, the body an accepted request carries, h11 accepts?)
CASES: dict[str, tuple[bytes, str, str, bool]] = {
    "get": (b"GET /e HTTP/1.1\r\n" + H + b"\r\n", ACCEPT, "", True),
    "content_length": (post(b"Content-Length: 5\r\n", b"hello"), ACCEPT, "hello", True),
    "chunked": (post(CHUNKED, HELLO), ACCEPT, "hello", True),
    "chunked_upper_hex": (post(CHUNKED, b"A\r\n0123456789\r\n0\r\n\r\n"), ACCEPT, "0123456789",
                          True),
    "chunked_two_chunks": (post(CHUNKED, b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"), ACCEPT, "hello",
                           True),
    "te_case_insensitive": (post(b"Transfer-Encoding: Chunked\r\n", HELLO), ACCEPT, "hello", True),
    "chunk_extension": (post(CHUNKED, b"5;a=b\r\nhello\r\n0\r\n\r\n"), ACCEPT, "hello", True),
    "chunk_trailer": (post(CHUNKED, b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), ACCEPT, "hello", True),
    "value_ows": (post(b"Content-Length:   5  \r\n", b"hello"), ACCEPT, "hello", True),
    "http10_content_length": (b"POST /e HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", ACCEPT,
                              "hello", True),
    # 5.1: no whitespace between field name and colon
    "space_before_colon": (post(b"Content-Length : 5\r\n", b"hello"), REJECT, "", False),
    # 8.6 (RFC 9110): Content-Length = 1*DIGIT; conflicting values are an error
    "cl_plus": (post(b"Content-Length: +5\r\n", b"hello"), REJECT, "", False),
    "cl_underscore": (post(b"Content-Length: 1_0\r\n", b"helloworld"), REJECT, "", False),
    "cl_negative": (post(b"Content-Length: -1\r\n", b"hello"), REJECT, "", False),
    "cl_alpha": (post(b"Content-Length: abc\r\n", b"hello"), REJECT, "", False),
    "cl_conflict": (post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), REJECT, "",
                    False),
    "cl_list_conflict": (post(b"Content-Length: 5, 6\r\n", b"hello!"), REJECT, "", False),
    # 6.1 / 6.3: a request whose final coding is not chunked cannot be framed: 400
    "te_xchunked": (post(b"Transfer-Encoding: xchunked\r\n", HELLO), REJECT, "", False),
    "te_chunked_identity": (post(b"Transfer-Encoding: chunked, identity\r\n", HELLO), REJECT, "",
                            False),
    "te_twice": (post(CHUNKED + CHUNKED, HELLO), REJECT, "", False),
    "te_identity": (post(b"Transfer-Encoding: identity\r\n", b"hello"), REJECT, "", False),
    # 6.3: both present "ought to be handled as an error"; a server MAY reject (we do, h11
    # lets Transfer-Encoding win)
    "te_and_cl": (post(b"Content-Length: 3\r\n" + CHUNKED, HELLO), EITHER, "hello", True),
    # 6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty (h11 accepts it)
    "te_http10": (b"POST /e HTTP/1.0\r\n" + CHUNKED + b"\r\n" + HELLO, REJECT, "", True),
    # 7.1: chunk-size = 1*HEXDIG
    "chunk_0x": (post(CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"), REJECT, "", False),
    "chunk_plus": (post(CHUNKED, b"+5\r\nhello\r\n0\r\n\r\n"), REJECT, "", False),
    "chunk_negative": (post(CHUNKED, b"-1\r\nhello\r\n0\r\n\r\n"), REJECT, "", False),
    "chunk_bad_size": (post(CHUNKED, b"zz\r\nhello\r\n0\r\n\r\n"), REJECT, "", False),
    "chunk_overflow": (post(CHUNKED, b"FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"), REJECT, "",
                       False),
    # trailing space without a chunk extension is not in the grammar (h11 tolerates it)
    "chunk_size_trailing_space": (post(CHUNKED, b"5 \r\nhello\r\n0\r\n\r\n"), REJECT, "", True),
    "chunk_data_without_crlf": (post(CHUNKED, b"5\r\nhelloXX0\r\n\r\n"), REJECT, "", False),
    # 5.5 (RFC 9110): field values hold no NUL, CR or LF
    "nul_in_value": (post(b"X-A: a\x00b\r\nContent-Length: 0\r\n", b""), REJECT, "", False),
    "bare_cr_in_value": (post(b"X-A: a\rb\r\nContent-Length: 0\r\n", b""), REJECT, "", False),
    # 5.1: field-name = token
    "name_with_space": (post(b"X A: b\r\nContent-Length: 0\r\n", b""), REJECT, "", False),
    "name_with_paren": (post(b"X(A): b\r\nContent-Length: 0\r\n", b""), REJECT, "", False),
    "line_without_colon": (post(b"XA\r\nContent-Length: 0\r\n", b""), REJECT, "", False),
    "empty_name": (post(b": b\r\nContent-Length: 0\r\n", b""), REJECT, "", False),
    # 5.2: obs-fold: reject, or replace with SP (h11 unfolds)
    "obs_fold": (post(b"X-A: a\r\n b\r\nContent-Length: 0\r\n", b""), EITHER, "", True),
    # 2.2: whitespace between the start line and the first field
    "whitespace_before_first_field": (b"POST /e HTTP/1.1\r\n Host: x\r\nContent-Length: 0\r\n\r\n",
                                      REJECT, "", False),
    # 2.3: an unknown major version: 505 or 400 (h11 reads it as 1.1)
    "version_9_9": (b"GET /e HTTP/9.9\r\n" + H + b"\r\n", EITHER, "", True),
    # 3: recipients MAY split the request line on any whitespace
    "double_space_request_line": (b"GET  /e HTTP/1.1\r\n" + H + b"\r\n", EITHER, "", False),
    # 3.2: a 1.1 request without exactly one Host is answered 400
    "no_host": (b"GET /e HTTP/1.1\r\n\r\n", REJECT, "", False),
    "two_hosts": (b"GET /e HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", REJECT, "", False),
    # 3.1: method = token; 3.2: no control characters in the target
    "bad_method": (b"G(T /e HTTP/1.1\r\n" + H + b"\r\n", REJECT, "", False),
    "control_char_in_target": (b"GET /e\x01 HTTP/1.1\r\n" + H + b"\r\n", REJECT, "", False),
}


@pytest.fixture(scope="module")
def served():  # type: ignore[no-untyped-def]
    with echo_server() as s:
        yield s


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_framing_as_rfc_9112_says_compared_with_h11(served, case: str) -> None:  # type: ignore[no-untyped-def]
    data, verdict, body, h11_verdict = CASES[case]
    assert h11_accepts(data) is h11_verdict  # the reference parser's decision, written down
    answers = exchange(served, data)
    assert len(answers) == 1, "every request gets an answer"
    status, headers, payload = answers[0]
    if verdict == ACCEPT or (verdict == EITHER and status == 200):
        assert status == 200
        assert json.loads(payload)["body"] == body
    else:
        assert status == 400 and headers.get("connection") == "close"
        assert b"malformed" in payload or b"Host" in payload or b"Transfer-Encoding" in payload
    if verdict != EITHER:
        assert (status == 200) is (verdict == ACCEPT)


def test_pipelined_requests_are_answered_in_order(served) -> None:  # type: ignore[no-untyped-def]
    one = post(b"Content-Length: 3\r\n", b"one")
    two = post(CHUNKED, b"3\r\ntwo\r\n0\r\n\r\n")
    answers = exchange(served, one + two + b"GET /three HTTP/1.1\r\n" + H + b"\r\n", 3)
    assert [json.loads(b)["body"] for _, _, b in answers] == ["one", "two", ""]


def test_a_bad_request_after_good_ones_answers_them_first(served) -> None:  # type: ignore[no-untyped-def]
    good = post(b"Content-Length: 2\r\n", b"ok")
    answers = exchange(served, good + CASES["cl_plus"][0], 2)
    assert [s for s, _, _ in answers] == [200, 400]


def test_smuggled_request_is_not_served(served) -> None:  # type: ignore[no-untyped-def]
    """CL.TE: a proxy that honours Content-Length would forward the 'GET /admin' as body; we
    must not read it as a second request."""
    smuggle = post(b"Content-Length: 35\r\n" + CHUNKED,
                   b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = exchange(served, smuggle, 2)
    assert [s for s, _, _ in answers] == [400]
    assert "/admin" not in served.app.targets


@pytest.mark.parametrize("split", [False, True], ids=["one_read", "body_later"])
def test_an_upgrade_request_is_answered_as_http_1_1_with_its_body(served, split: bool) -> None:  # type: ignore[no-untyped-def]
    """curl --http2 on http:// sends 'Upgrade: h2c' with its POST: answered as HTTP/1.1 (the
    upgrade is ignored), body included, then the connection closes."""
    head = (b"POST /up HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nContent-Length: 5\r\n\r\n")
    with served.connect() as s:
        if split:
            s.sendall(head + b"he")
            time.sleep(0.05)
            s.sendall(b"llo")
        else:
            s.sendall(head + b"hello")
        answers = read_responses(s, 2)
    assert [(st, json.loads(b)["body"]) for st, _, b in answers] == [(200, "hello")]
    assert answers[0][1]["connection"] == "close"
