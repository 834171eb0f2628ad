import pytest

from postpurchase.campaigns.config import CampaignConfig
from postpurchase.exceptions import ConfigError, InvalidInput
from postpurchase.messages.tokens import LinkClaim, sign, signing_key, signing_keys, verify
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
