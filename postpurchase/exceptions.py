"""The project's errors, one tree so callers can catch by meaning.

    PostpurchaseError                 anything the project raises on purpose
    ├── ConfigError                   settings or config files are wrong; fix and re-run
    ├── DatabaseUnavailable           the engine's database cannot be reached (may recover)
    ├── ConcurrentChange              another worker changed the same rows meanwhile; retry
    ├── InvalidInput                  data from outside (webhook, file) is malformed or invalid
    ├── PlatformApiError              a shop platform's API (Shopify Admin, WooCommerce REST)
    │                                 refused or failed a look-up; the product stays unknown
    └── ProviderError                 SendGrid, Twilio or another channel refused or failed
        ├── TransientProviderError    retry with backoff (429, 5xx, connection refused)
        ├── PermanentProviderError    do not retry (4xx): the request itself is wrong
        │   └── RecipientOptedOut     the number replied STOP (Twilio 21610): record it
        └── UnknownOutcome            the request may have been acted on (timeout after send):
                                      never retried blind, recorded as unknown

The CLI prints the message of a PostpurchaseError as one line; any other exception is a bug and
prints a traceback only with --debug.
"""


class PostpurchaseError(Exception):
    """Base class for every error the project raises deliberately."""


class ConfigError(PostpurchaseError):
    """A setting or configuration file is invalid; the message names which and where."""


class DatabaseUnavailable(PostpurchaseError):
    """The engine's database could not be reached within the connect timeout."""


class ConcurrentChange(PostpurchaseError):
    """Rows this transaction meant to write were written meanwhile by another one; rolling
    back and retrying sees them."""


class InvalidInput(PostpurchaseError):
    """Input from outside the process is malformed or fails validation."""


class PlatformApiError(PostpurchaseError):
    """A shop platform's API did not answer a look-up usefully.

    ``retry_after`` is the wait in seconds the platform asked for (429), if any;
    ``stop`` says that the next look-ups would fail the same way (bad credentials, rate
    limited, platform down), so a run stops asking until later.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, stop: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.stop = stop


class ProviderError(PostpurchaseError):
    """A message provider refused or failed a request."""


class TransientProviderError(ProviderError):
    """Worth retrying later: rate limited, provider error, or the request never arrived.

    ``retry_after`` is the wait in seconds the provider asked for (X-RateLimit-Reset), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Retrying cannot help: the provider rejected the request itself."""


class RecipientOptedOut(PermanentProviderError):
    """The recipient opted out at the provider (replied STOP): never send to them again."""


class UnknownOutcome(ProviderError):
    """The request may have reached the provider; whether it was acted on is unknown."""
