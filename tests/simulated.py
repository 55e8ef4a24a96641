"""What the tests that drive the command line share: the simulator's credentials as the
environment variables a user would set."""

from __future__ import annotations

from extractor.config import GatewayConfig
from extractor.simulator import SimCredentials

CREDS = SimCredentials()


def gateway_env(url: str, credentials: SimCredentials = CREDS) -> dict[str, str]:
    """The ``ENOS_*`` variables that point a run at the simulator at ``url``."""
    return {
        "ENOS_GATEWAY": url,
        "ENOS_APP_KEY": credentials.app_key,
        "ENOS_APP_SECRET": credentials.app_secret,
        "ENOS_ORG_ID": credentials.org_id,
        "ENOS_USER_ID": credentials.user_id,
    }


def gateway_config(url: str, credentials: SimCredentials = CREDS) -> GatewayConfig:
    """Gateway settings for the Python API that point at the simulator at ``url``."""
    return GatewayConfig(
        base_url=url,
        app_key=credentials.app_key,
        app_secret=credentials.app_secret,
        org_id=credentials.org_id,
        user_id=credentials.user_id,
    )
