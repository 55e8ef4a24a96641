"""Airflow connections and Variables as this package's settings, for ``extractor.airflow``.

The gateway's connection: host (the gateway's URL), login (app key), password (app
secret), and ``org_id``, ``user_id`` and optionally ``timezone`` and ``service_path`` in
its extra; or Variables named like the command line's environment variables. The
warehouse's: the Postgres type, or a ``sqlalchemy_url`` in its extra. Secrets found are
handed to Airflow's masker, so task logs show ``***`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from extractor.config import ENV_VARS, GatewayConfig, load_gateway_config
from extractor.errors import ConfigError

if TYPE_CHECKING:
    from extractor.load import SqlDestination

_GATEWAY_EXTRA = {"org_id", "user_id", "timezone", "service_path"}
_LIBPQ_EXTRA = frozenset(
    {"sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "connect_timeout", "options"}
)


def gateway(conn_id: str | None) -> GatewayConfig:
    """The gateway settings of an Airflow connection, or of Variables when ``conn_id`` is None."""
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.log import mask_secret

    if conn_id is None:
        found = {var: Variable.get(var, default=None) for var in ENV_VARS.values()}
        values = {k: str(v) for k, v in found.items() if v}
    else:
        values = gateway_values(BaseHook.get_connection(conn_id))
    if values.get(ENV_VARS["app_secret"]):
        mask_secret(values[ENV_VARS["app_secret"]])
    return load_gateway_config(env=values)


def warehouse(conn_id: str, *, schema: str | None, prefix: str) -> SqlDestination:
    """The destination an Airflow connection names, its password masked in task logs."""
    from airflow.sdk import BaseHook
    from airflow.sdk.log import mask_secret

    from extractor.load import SqlDestination

    url = warehouse_url(BaseHook.get_connection(conn_id))
    if url.password:
        mask_secret(str(url.password))
    return SqlDestination(
        url.render_as_string(hide_password=False),
        schema=schema,
        table_prefix=prefix,
    )


class Connection(Protocol):
    """The fields of an Airflow connection read here."""

    conn_type: str | None
    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None
    extra_dejson: Mapping[str, Any]


def gateway_values(conn: Connection) -> dict[str, str]:
    """An Airflow connection's fields as the ``ENOS_*`` settings they stand for.

    >>> from types import SimpleNamespace as Conn
    >>> values = gateway_values(Conn(conn_type="https", host="gw.example.com", port=None,
    ...     login="key", password="s3cret", extra_dejson={"org_id": "o1", "user_id": "u1"}))
    >>> values["ENOS_GATEWAY"], values["ENOS_APP_KEY"], values["ENOS_ORG_ID"]
    ('https://gw.example.com', 'key', 'o1')
    """
    url = conn.host or ""
    if url and "://" not in url:
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
        url = f"{scheme}://{url}{f':{conn.port}' if conn.port else ''}"
    values = {"base_url": url, "app_key": conn.login or "", "app_secret": conn.password or ""}
    values.update({k: str(v) for k, v in conn.extra_dejson.items() if k in _GATEWAY_EXTRA})
    return {ENV_VARS[k]: v for k, v in values.items() if v}


def warehouse_url(conn: Connection) -> sa.URL:
    """The SQLAlchemy URL of an Airflow connection: its ``sqlalchemy_url`` extra, or for
    the Postgres type its fields (``schema`` is the database, as in Airflow).

    >>> from types import SimpleNamespace as Conn
    >>> warehouse_url(Conn(conn_type="postgres", host="db", port=5432, login="etl",
    ...     password="pw", schema="warehouse", extra_dejson={"sslmode": "require"}),
    ... ).render_as_string()
    'postgresql://etl:***@db:5432/warehouse?sslmode=require'
    """
    extra = conn.extra_dejson
    if extra.get("sqlalchemy_url"):
        return sa.make_url(str(extra["sqlalchemy_url"]))
    if conn.conn_type not in ("postgres", "postgresql"):
        raise ConfigError(
            f"the warehouse connection is of type {conn.conn_type!r}: use the Postgres type, "
            "or put a SQLAlchemy URL in its extra as sqlalchemy_url"
        )
    return sa.URL.create(
        "postgresql",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port,
        database=conn.schema or None,
        query={k: str(v) for k, v in extra.items() if k in _LIBPQ_EXTRA},
    )
