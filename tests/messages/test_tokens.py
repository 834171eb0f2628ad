import base64
import hashlib
import hmac
import sys

import pytest

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.messages.scored_links import ScoredLinks
from postpurchase.messages.tokens import (
    LinkClaim,
    _keyed,
    sign,
    sign_fields,
    sign_joined,
    sign_score,
    signing_key,
    signing_keys,
    verify,
)
from postpurchase.settings import Settings

KEY = b"k" * 32


def test_round_trip():
    claim = LinkClaim("survey", 42, 1001, 5)
    assert verify(KEY, sign(KEY, claim), "survey") == claim


def _reference_token(key: bytes, payload: bytes) -> str:
    """A token as the standard library's HMAC and base64 make it."""
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(payload)}.{b64(mac)}"


@pytest.mark.parametrize(
    "key", [b"", b"k", KEY, b"x" * 63, b"y" * 64, b"z" * 65, b"long key " * 40, bytes(range(256))]
)
def test_tokens_are_the_standard_hmac_of_their_payload(key):
    # keys shorter than, as long as and longer than SHA-256's block (hashed first)
    assert sign(key, LinkClaim("survey", 42, 1001, 5)) == _reference_token(key, b"s.42.1001.5")
    assert sign(key, LinkClaim("unsubscribe", 7, 9)) == _reference_token(key, b"u.7.9")
    url = "https://shop.example.com/p?a=1&b=\u00e9"
    assert sign_fields(key, "c", ["9", "0", "2", url]) == _reference_token(
        key, f"c.9.0.2.{url}".encode()
    )
    assert sign_joined(key, f"c.9.0.2.{url}") == sign_fields(key, "c", ["9", "0", "2", url])
    # every length of payload modulo 3: base64 padding of 0, 1 and 2 characters stripped
    for size in range(1, 7):
        claim = LinkClaim("rewards", int("1" * size), 1)
        payload = f"r.{'1' * size}.1".encode()
        assert sign(key, claim) == _reference_token(key, payload)
    for purpose, code in (("survey", "s"), ("nps", "n")):
        for score in (0, 5, 10):
            token = _reference_token(key, f"{code}.42.1001.{score}".encode())
            assert sign_score(key, purpose, 42, 1001, score) == token
            assert sign(key, LinkClaim(purpose, 42, 1001, score)) == token


def test_tokens_are_the_same_with_pythons_own_sha256(monkeypatch):
    # A Python without OpenSSL's hashes: the keyed states are its own SHA-256's, copied for
    # each token as OpenSSL's are, and sign and verify alike.
    builtin = pytest.importorskip("_sha2" if sys.version_info >= (3, 12) else "_sha256")
    expected = sign(KEY, LinkClaim("survey", 42, 1001, 5))
    monkeypatch.setattr(hashlib, "sha256", builtin.sha256)
    _keyed.cache_clear()  # keyed states made with OpenSSL's SHA-256 are not reused
    try:
        assert type(_keyed(KEY)[0]) is type(builtin.sha256())
        assert sign(KEY, LinkClaim("survey", 42, 1001, 5)) == expected
        assert sign_score(KEY, "nps", 42, 1001, 10) == _reference_token(KEY, b"n.42.1001.10")
        assert verify(KEY, expected, "survey") == LinkClaim("survey", 42, 1001, 5)
    finally:
        _keyed.cache_clear()  # nor those made without it, after the test


def test_scored_links_iterate_as_they_index():
    links = ScoredLinks(KEY, "https://x.example/s/", "survey", 42, 1001, range(1, 6))
    listed = list(links)
    assert listed == [links[i] for i in range(len(links))]
    assert [link["score"] for link in listed] == [1, 2, 3, 4, 5]
    assert listed[0]["url"] == "https://x.example/s/" + sign(KEY, LinkClaim("survey", 42, 1001, 1))
    assert listed[2] is links[2]  # signed once, whichever way it was read
    assert links[1:3] == listed[1:3]
    with pytest.raises(IndexError):
        links[5]


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


def test_links_signed_before_a_rotation_still_verify():
    old = Settings(signing_secret="old-secret-0123456789")
    rotated = Settings(
        signing_secret="new-secret-9876543210",
        previous_signing_secrets="old-secret-0123456789, older-secret",
    )
    sent_before = sign(signing_key(old), LinkClaim("unsubscribe", 42, 1001))
    sent_after = sign(signing_key(rotated), LinkClaim("unsubscribe", 42, 1002))

    assert signing_key(rotated) == b"new-secret-9876543210"  # new links use the new key
    assert signing_keys(rotated) == [
        b"new-secret-9876543210",
        b"old-secret-0123456789",
        b"older-secret",
    ]
    assert verify(signing_keys(rotated), sent_before, "unsubscribe").touchpoint_id == 1001
    assert verify(signing_keys(rotated), sent_after, "unsubscribe").touchpoint_id == 1002
    # Once the old key is dropped, its links stop working.
    with pytest.raises(InvalidInput, match="signature"):
        verify(
            signing_keys(Settings(signing_secret="new-secret-9876543210")),
            sent_before,
            "unsubscribe",
        )


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"database_url": "postgresql://pp:pw@db.internal/postpurchase"}, "with PostgreSQL"),
        ({"email_channel": "sendgrid"}, "POSTPURCHASE_EMAIL_CHANNEL=sendgrid"),
        ({"sms_channel": "twilio"}, "POSTPURCHASE_SMS_CHANNEL=twilio"),
    ],
)
def test_a_shared_deployment_without_the_secret_is_refused(tmp_path, settings, named):
    with pytest.raises(ConfigError, match="POSTPURCHASE_SIGNING_SECRET is not set") as refused:
        signing_key(Settings(var_dir=tmp_path, **settings))
    message = str(refused.value)
    assert named in message and "\n" not in message and "pw" not in message
    assert not (tmp_path / "signing-secret").exists()  # no per-process key made


def test_dispatcher_and_webhook_server_refuse_to_start_without_the_secret(
    db_url, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from postpurchase.cli.serve import serve
    from postpurchase.tasks.dispatch import build_dispatcher

    settings = Settings(var_dir=tmp_path, email_channel="sendgrid", sendgrid_api_key="SG.x")
    with pytest.raises(ConfigError, match="POSTPURCHASE_SIGNING_SECRET is not set"):
        build_dispatcher(settings, CampaignConfig())

    # db_url: a migrated database on SQLite and PostgreSQL; Twilio makes the secret required
    # on either.
    monkeypatch.setenv("POSTPURCHASE_SMS_CHANNEL", "twilio")
    monkeypatch.delenv("POSTPURCHASE_SIGNING_SECRET", raising=False)
    result = CliRunner().invoke(serve, ["--port", "18999"])
    assert result.exit_code != 0
    assert "POSTPURCHASE_SIGNING_SECRET is not set" in str(result.exception)
