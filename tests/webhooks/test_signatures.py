import base64
import time

import pytest

from postpurchase.webhooks.signatures import (
    BadSignature,
    base64_digest,
    sign_generic,
    verify_base64_hmac,
    verify_generic,
)

# RFC 4231, test case 2: an HMAC-SHA256 vector computed by someone else.
RFC4231_KEY = "Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_base64_digest_matches_a_published_hmac_sha256_vector():
    assert (
        base64_digest(RFC4231_DATA, RFC4231_KEY)
        == base64.b64encode(bytes.fromhex(RFC4231_HEX)).decode()
    )


def test_base64_hmac_accepts_the_right_signature_and_refuses_others():
    body = b'{"id": 1}'
    good = base64_digest(body, "s3cret")
    verify_base64_hmac(body, good, "s3cret", header_name="X-Sig")
    verify_base64_hmac(body, f"  {good} ", "s3cret", header_name="X-Sig")
    with pytest.raises(BadSignature, match="X-Sig does not match"):
        verify_base64_hmac(body + b" ", good, "s3cret", header_name="X-Sig")
    with pytest.raises(BadSignature, match="X-Sig does not match"):
        verify_base64_hmac(body, base64_digest(body, "other"), "s3cret", header_name="X-Sig")
    with pytest.raises(BadSignature, match="missing X-Sig"):
        verify_base64_hmac(body, None, "s3cret", header_name="X-Sig")
    with pytest.raises(BadSignature):
        verify_base64_hmac(body, "Ünïcode", "s3cret", header_name="X-Sig")


def test_generic_signature_is_hex_hmac_of_timestamp_dot_body():
    header = sign_generic(RFC4231_DATA, RFC4231_KEY, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    verify_generic(RFC4231_DATA, header, RFC4231_KEY, now=1_700_000_010, tolerance=300)


def test_generic_signature_refuses_stale_future_tampered_and_malformed():
    body = b'{"id": "evt_1"}'
    now = time.time()
    stale = sign_generic(body, "k", int(now) - 301)
    with pytest.raises(BadSignature, match="more than 300 s"):
        verify_generic(body, stale, "k", now=now, tolerance=300)
    future = sign_generic(body, "k", int(now) + 400)
    with pytest.raises(BadSignature, match="more than 300 s"):
        verify_generic(body, future, "k", now=now, tolerance=300)
    fresh = sign_generic(body, "k", int(now))
    with pytest.raises(BadSignature, match="does not match"):
        verify_generic(body.replace(b"1", b"2"), fresh, "k", now=now, tolerance=300)
    # The timestamp is signed: moving it to look fresh breaks the signature.
    moved = fresh.replace(f"t={int(now)}", f"t={int(now) + 1}")
    with pytest.raises(BadSignature, match="does not match"):
        verify_generic(body, moved, "k", now=now, tolerance=300)
    for malformed in ("", "v1=abc", f"t={int(now)}", "t=soon,v1=abc", "garbage"):
        with pytest.raises(BadSignature):
            verify_generic(body, malformed, "k", now=now, tolerance=300)


def test_generic_signature_accepts_any_listed_v1_during_a_secret_rotation():
    body = b"{}"
    t = int(time.time())
    old = sign_generic(body, "old", t).split(",v1=")[1]
    new = sign_generic(body, "new", t).split(",v1=")[1]
    verify_generic(body, f"t={t},v1={old},v1={new}", "new", now=t, tolerance=300)
