"""Field types and checks shared by the platform normalisers.

Platform JSON is read through pydantic models built from these types, so a wrong type or value
becomes an ``InvalidPayload`` that lists each problem with its path in the sender's JSON
(``line_items.2.price``). Money is Decimal from the platforms' decimal strings (or a JSON
number parsed as Decimal, never through float); times must carry their offset.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

import phonenumbers
from email_validator import EmailNotValidError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from postpurchase.events import normalised_email
from postpurchase.exceptions import InvalidInput


class InvalidPayload(InvalidInput):
    """The body is JSON but not a valid webhook: ``problems`` lists (field path, problem)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{path}: {problem}" for path, problem in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid content: {shown}{more}")


def field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def problems_of(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    return [(prefix + field_path(err["loc"]), err["msg"]) for err in exc.errors()]


M = TypeVar("M", bound=BaseModel)


def parse_as(model: type[M], data: Any, *, prefix: str = "") -> M:
    """Validate ``data`` as ``model``; InvalidPayload naming every wrong field otherwise."""
    if not isinstance(data, dict):
        raise InvalidPayload([(prefix.rstrip(".") or "body", "must be a JSON object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(problems_of(exc, prefix)) from None


def checked_money(value: Any) -> Decimal:
    """A platform's amount as Decimal: a decimal string, an integer or a parsed JSON number."""
    # bool is an int: "true" is not an amount.
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a decimal string such as "19.99"')
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise ValueError("must be a finite amount")
    return amount


def checked_identifier(value: Any) -> str:
    """A platform's id (string or integer) as text of 1 to 64 characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be an id (string or integer)")
    text = str(value).strip()
    if not text or len(text) > 64:
        raise ValueError("must be an id of 1 to 64 characters")
    return text


def _text_timestamp(value: Any) -> Any:
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 timestamp string")
    return value


def checked_aware(value: datetime) -> datetime:
    """``value`` if it carries an offset and lies in years 1970 to 9000."""
    if value.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-27T10:00:00-05:00")
    return _in_range(value)


def _gmt(value: datetime) -> datetime:
    # WooCommerce's *_gmt fields are UTC written without an offset.
    return _in_range(value if value.tzinfo else value.replace(tzinfo=UTC))


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not 1970 <= utc.year <= 9000:
        raise ValueError("is out of range (years 1970 to 9000)")
    return value


Money = Annotated[Decimal, BeforeValidator(checked_money)]
Identifier = Annotated[str, BeforeValidator(checked_identifier)]
Timestamp = Annotated[datetime, BeforeValidator(_text_timestamp), AfterValidator(checked_aware)]
GmtTimestamp = Annotated[datetime, BeforeValidator(_text_timestamp), AfterValidator(_gmt)]


class PlatformModel(BaseModel):
    """Platform JSON as read: unknown fields are ignored (platforms add fields all the time)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _decoded(value: Any) -> Any:
    # WooCommerce stores product names and addresses as HTML-escaped text ("Ship Your Idea
    # &ndash; Color"). Decoded once here, so stored text is plain and rendering escapes it once.
    return html.unescape(value) if isinstance(value, str) and "&" in value else value


# Text a platform sends HTML-escaped (WooCommerce); plain text is left as it is.
HtmlText = Annotated[str, BeforeValidator(_decoded)]


def usable_email(raw: str | None) -> tuple[str | None, str | None]:
    """(the address lower-cased, None) if ``raw`` is an address mail can go to, else
    (None, why not); (None, None) when there is no address at all.

    No DNS look-up: intake must stay fast and work offline. Control characters (a CRLF that
    could inject headers), spaces, a missing domain or a reserved one (.test, .local) make
    an address unusable.
    """
    if raw is None or not raw.strip():
        return None, None
    try:
        return normalised_email(raw.strip()), None
    except EmailNotValidError as exc:
        return None, str(exc)


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_LETTERS = re.compile(r"[A-Za-z]")
_EXTENSION = re.compile(r"\s*(?:ext\.?|x|#)\s*[0-9]{1,6}\s*$", re.IGNORECASE)


def e164(raw: str | None, *regions: str | None) -> str | None:
    """``raw`` as an E.164 number, trying each ISO country in ``regions`` (most telling
    first) for local numbers.

    None when there is no number or it cannot be one. A number valid for one of the regions
    wins. Failing that, a number of possible length for the first region is kept:
    phonenumbers' ranges lag behind real allocations (and leave out the 555 numbers of
    documentation examples), and a STOP from that number must still find the customer; the
    SMS provider refuses one that does not exist. Letters are refused: they are placeholders
    such as Shopify's test "555-555-SHIP", not vanity numbers. A number already written in
    E.164 (as Shopify stores customers' phones) is kept as it is: parsing and validating it
    again costs a large share of a webhook's time and changes nothing the SMS provider will
    not check itself.
    """
    if not raw or not raw.strip():
        return None
    if _E164.match(raw):
        return raw
    if _LETTERS.search(_EXTENSION.sub("", raw)):
        return None
    possible: str | None = None
    # Each region once: the billing, shipping and shop's countries are often one, and a
    # second try of a region parses the same number to the same verdict. A number that no
    # region validates costs the most, phonenumbers matching it against every region of its
    # country code each time (25 for +1): the two repeated tries were 40% of the instructions
    # of reading a WooCommerce order whose countries are all the shop's.
    tried = dict.fromkeys(region.upper() if region else None for region in (*regions, None))
    for index, region in enumerate(tried):
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number):
            return formatted
        if index == 0 and _plausible(number):
            possible = formatted
    return possible


_NANP = re.compile(r"^[2-9][0-9]{2}[2-9][0-9]{6}$")  # NXX-NXX-XXXX


def _plausible(number: phonenumbers.PhoneNumber) -> bool:
    if not phonenumbers.is_possible_number(number):
        return False
    if number.country_code == 1:  # the North American plan fixes the shape of every number
        return bool(_NANP.match(phonenumbers.national_significant_number(number)))
    return True
