"""The example DAGs in a real Airflow 3: ``dag.test()`` against the simulator and PostgreSQL.

Airflow lives in its own venv (``.venv-airflow``, built by ``make test``), so this test
sets Airflow up in a temporary home with the README's commands, runs
``tests/airflow_driver.py`` with that venv's python and checks what it reports, the
loaded rows and the logs. ``dag.test()`` runs task instances one at a time and does not
look at pools, so the pool's limit is checked with one pass of the scheduler's own
selection of task instances to start (see the driver).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pgserver import fresh_database
from simulated import CREDS, gateway_config, gateway_env

from extractor import run_extract
from extractor.config import ENV_VARS
from extractor.gateway._client import EnOSClient
from extractor.load import SqlDestination
from extractor.run._sources import discovered, parse_time
from extractor.simulator import Population, Simulator

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = ROOT / ".venv-airflow" / "bin"
README = (ROOT / "README.md").read_text(encoding="utf-8")
DRIVER = Path(__file__).with_name("airflow_driver.py")
ZONE = "Asia/Shanghai"
SYNC = ("2026-01-02T00:00", "2026-01-02T01:00")
BACKFILL = ("2026-01-01T00:00", "2026-01-01T03:00")  # six half-hour windows
DB_PASSWORD = "warehouse-password-4417"  # the suite's server trusts; Airflow must hide it

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (AIRFLOW_BIN / "airflow").exists(),
        reason="no Airflow venv: `make test` builds .venv-airflow (Airflow 3 from PyPI)",
    ),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    population = Population(seed=5, flows=3, start=datetime(2026, 1, 1), end=datetime(2026, 1, 3))
    with Simulator(population, credentials=CREDS) as server:
        yield server


def set_up_as_the_readme_says(sim: Simulator, db_url: str, env: dict[str, str]) -> None:
    """Run the README's set-up commands (pool, connections, DAG file) with this test's
    database and simulator in place of the examples."""
    block = README.split("Set it up in Airflow's environment", 1)[1].split("```sh\n", 1)[1]
    script = block.split("```", 1)[0].replace("pip install '.[airflow]'\n", "")
    db = sa.make_url(db_url)
    ours = f"postgresql://{db.username}:{DB_PASSWORD}@{db.host}:{db.port}/{db.database}"
    for example, value in (
        ("postgresql://etl:etl-password@warehouse.example.com:5432/analytics", ours),
        ("https://gateway.example.com", sim.url),
        ("APP_KEY", CREDS.app_key),
        ("APP_SECRET", CREDS.app_secret),
        ("ORG_ID", CREDS.org_id),
        ("USER_ID", CREDS.user_id),
    ):
        assert example in script, f"the README's set-up no longer has {example}"
        script = script.replace(example, value)
    subprocess.run([str(AIRFLOW_BIN / "airflow"), "db", "migrate"], env=env, check=True)
    subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, check=True)


def add_a_sync_from_variables(sim: Simulator, env: dict[str, str]) -> None:
    """A second sync DAG whose gateway settings are Variables named like ``ENOS_*``."""
    dags = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
    (dags / "enos_flows_variables.py").write_text(
        "from extractor.airflow import sync_dag\n\n"
        "sync = sync_dag(dag_id='enos_flows_sync_variables', gateway_conn_id=None,\n"
        "                pool_size=4, gateway_max_rps=20.0)\n",
        encoding="utf-8",
    )
    for name, value in gateway_env(sim.url).items():
        subprocess.run(
            [str(AIRFLOW_BIN / "airflow"), "variables", "set", name, value], env=env, check=True
        )


def run_driver(sim: Simulator, db_url: str, home: Path) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS.values()}
    env.update(
        PATH=f"{AIRFLOW_BIN}{os.pathsep}{env.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
    )
    set_up_as_the_readme_says(sim, db_url, env)
    add_a_sync_from_variables(sim, env)
    done = subprocess.run(
        [str(AIRFLOW_BIN / "python"), str(DRIVER), *SYNC, *BACKFILL],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), output


def instance_ids(url: str, start: str, end: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT instance_id FROM flow_instances "
                    "WHERE trigger_time >= :start AND trigger_time < :end"
                ),
                {"start": _at(start), "end": _at(end)},
            )
            return {r[0] for r in rows}
    finally:
        engine.dispose()


def _at(text: str) -> datetime:
    """A naive time of the tests as the gateway's wall clock, like the DAGs read it."""
    return parse_time(text, "time", ZoneInfo(ZONE))


def test_sync_and_backfill_dags_in_airflow(
    sim: Simulator, postgresql_server_url: str, tmp_path: Path
) -> None:
    with (
        fresh_database(postgresql_server_url) as db_url,
        fresh_database(postgresql_server_url) as expected_url,
    ):
        results, output = run_driver(sim, db_url, tmp_path / "airflow")

        sync = results["enos_flows_sync"]
        assert sync["state"] == "success", output[-5000:]
        [task] = sync["tasks"]
        assert (task["state"], task["pool"]) == ("success", "enos_api")
        assert task["xcom"]["exit_code"] == 0 and task["xcom"]["loaded"] > 0
        assert task["xcom"]["max_rps"] == 20.0 / 4  # the budget over the pool's slots

        from_variables = results["enos_flows_sync_variables"]
        assert from_variables["state"] == "success", output[-5000:]
        [task] = from_variables["tasks"]
        assert task["xcom"]["exit_code"] == 0  # the same window again: nothing new to load

        backfill = results["enos_flows_backfill"]
        assert backfill["state"] == "success", output[-5000:]
        loads = [t for t in backfill["tasks"] if t["task_id"] == "load"]
        assert [t["map_index"] for t in loads] == list(range(6)), backfill
        for t in loads:
            assert (t["state"], t["pool"], t["pool_slots"]) == ("success", "enos_api", 1)
            assert t["xcom"]["max_rps"] == 5.0 and t["xcom"]["exit_code"] == 0
        assert results["max_active_tis_per_dagrun"] == 4
        # dag.test() ran the mapped tasks one after the other...
        spans = sorted((t["start"], t["end"]) for t in loads)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        # ...while the scheduler starts as many as the pool has slots, four at most.
        assert results["queued_at_once"] == {"2": 2, "4": 4, "16": 4}

        # The rows: those of one plain load of the same windows.
        with EnOSClient(gateway_config(sim.url)) as client:
            dest = SqlDestination(expected_url)
            for start, end in (SYNC, BACKFILL):
                found = discovered(client, start=_at(start), end=_at(end))
                run_extract(found.ids, client=client, destinations=[dest])
            dest.engine.dispose()
        for start, end in (SYNC, BACKFILL):
            expected = instance_ids(expected_url, start, end)
            assert expected and instance_ids(db_url, start, end) == expected
        assert sum(t["xcom"]["loaded"] for t in loads) == len(instance_ids(db_url, *BACKFILL))

    # The task logs went through Airflow (the run reports are there), without secrets.
    logs = output + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "airflow").rglob("*.log")
    )
    assert "run report:" in logs
    for secret in (CREDS.app_secret, DB_PASSWORD):
        assert secret not in logs
        assert secret not in json.dumps(results)
