import pytest

from postpurchase.exceptions import InvalidInput
from postpurchase.messages.tokens import LinkClaim, sign, signing_key, verify
from postpurchase.settings import Settings

KEY = b"k" * 32


def test_round_trip():
    claim = LinkClaim("survey", 42, 1001, 5)
    assert verify(KEY, sign(KEY, claim), "survey") == claim


def test_tampering_and_wrong_key_and_wrong_purpose_are_refused():
    token = sign(KEY, LinkClaim("unsubscribe", 42, 1001))
    payload, mac = token.split(".")
    other = sign(KEY, LinkClaim("unsubscribe", 43, 1001))
    with pytest.raises(InvalidInput, match="signature"):
        verify(KEY, f"{other.split('.')[0]}.{mac}", "unsubscribe")
    with pytest.raises(InvalidInput, match="signature"):
        verify(b"another key", token, "unsubscribe")
    with pytest.raises(InvalidInput, match="not survey"):
        verify(KEY, token, "survey")
    with pytest.raises(InvalidInput, match="malformed"):
        verify(KEY, "no-dot-here", "unsubscribe")


def test_key_file_is_made_once_and_reused(tmp_path):
    settings = Settings(var_dir=tmp_path)
    first = signing_key(settings)
    assert len(first) >= 32
    assert signing_key(settings) == first
    assert (tmp_path / "signing-secret").stat().st_mode & 0o077 == 0
    assert signing_key(Settings(var_dir=tmp_path, signing_secret="s3cret")) == b"s3cret"
