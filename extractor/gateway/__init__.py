"""The EnOS gateway: authentication, transport, the client, rate control and health.

``_auth`` signs requests and caches the access token; ``_transport`` is the seam that
sends bytes (urllib3 in production, an injected ``requests.Session``, or a test fake);
``_client`` retries and pages List Flow Instances; ``_answers`` says what an answer
means; ``_rate`` finds
the gateway's rate limit; ``_health`` pauses every worker while the gateway is down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

__all__ = [
    "Answer",
    "ApimAuth",
    "ClientStats",
    "EnOSClient",
    "GatewayHealth",
    "PooledTransport",
    "RateLimiter",
    "SessionTransport",
    "Transport",
]

__getattr__, __dir__ = exports(globals(), __all__)

if TYPE_CHECKING:
    from extractor.gateway._auth import ApimAuth
    from extractor.gateway._client import ClientStats, EnOSClient
    from extractor.gateway._health import GatewayHealth
    from extractor.gateway._rate import RateLimiter
    from extractor.gateway._transport import Answer, PooledTransport, SessionTransport, Transport
