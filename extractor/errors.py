"""Every exception this package raises on purpose, under one root.

Retry-ability is a type: the fetcher retries :class:`TransientApiError` and never
:class:`PermanentApiError`. :class:`AuthError` is permanent and fatal for the whole run,
since every later call would fail the same way.
"""

from __future__ import annotations


class ExtractorError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(ExtractorError, ValueError):
    """A setting is missing or invalid."""


class ApiError(ExtractorError):
    """A gateway call failed.

    Attributes carry what the failure record needs: the instance ID (when the call was
    about one), the HTTP status and the body's ``code``.
    """

    def __init__(
        self,
        message: str,
        *,
        instance_id: str | None = None,
        http_status: int | None = None,
        api_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.instance_id = instance_id
        self.http_status = http_status
        self.api_code = api_code
        self.retry_after_s = retry_after_s
        self.attempts = 1

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_api_error,
            (
                type(self),
                self.message,
                self.instance_id,
                self.http_status,
                self.api_code,
                self.retry_after_s,
            ),
        )


def _rebuild_api_error(
    cls: type[ApiError],
    message: str,
    instance_id: str | None,
    http_status: int | None,
    api_code: int | None,
    retry_after_s: float | None,
) -> ApiError:
    return cls(
        message,
        instance_id=instance_id,
        http_status=http_status,
        api_code=api_code,
        retry_after_s=retry_after_s,
    )


class TransientApiError(ApiError):
    """429, 5xx, timeouts, resets, malformed bodies: worth another try."""


class ThrottledError(TransientApiError):
    """The gateway asked us to slow down (HTTP 429 or a throttling body code)."""


class PermanentApiError(ApiError):
    """Not found, no permission, bad request: retrying cannot help."""


class NotFoundError(PermanentApiError):
    """The gateway has no flow instance with this ID."""


class FatalApiError(PermanentApiError):
    """Every call would fail the same way (wrong gateway URL, wrong org): stop the run."""


class UnexpectedAnswerError(FatalApiError):
    """The gateway answered in a shape this version does not know. Reading it as "no
    instances" would lose data silently, so the run stops and names what came back."""


class AuthError(FatalApiError):
    """Bad credentials or signature: every call would fail, so the run stops."""


class TokenExpiredError(ApiError):
    """The access token expired (code 1203); a new one is fetched and the call sent once
    more (:class:`extractor.gateway._auth.ApimAuth`)."""


class GatewayUnreachableError(TransientApiError):
    """No connection to the gateway at all (DNS, refused, TLS)."""


class RecordError(ExtractorError):
    """One record could not be flattened; the run goes on without it."""

    def __init__(self, message: str, *, instance_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.instance_id = instance_id


class LoadError(ExtractorError):
    """A destination refused the data (unwritable path, schema clash, bad URL)."""
