"""Run the example DAGs of ``examples/airflow/`` in a real Airflow, with ``dag.test()``.

Run by ``tests/test_airflow.py`` with the python of the Airflow venv (``.venv-airflow``),
once it has set Airflow up with the README's commands (pool, connections, DAG file) in a
temporary Airflow home. Usage: ``airflow_driver.py SINCE UNTIL FROM TO``. It runs the
sync DAG over ``[SINCE, UNTIL)``, the backfill DAG over ``[FROM, TO)`` in half-hour
windows, and a sync DAG that reads the gateway from Variables (which the test adds) over
``[SINCE, UNTIL)`` again; then it asks the scheduler's own code which of the backfill's
mapped tasks it would start at once. Its last line of output is a JSON object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def airflow(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "airflow", *args], check=True)


def main(since: str, until: str, start: str, end: str) -> dict[str, Any]:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    assert not bag.import_errors, bag.import_errors
    sync, backfill = bag.dags["enos_flows_sync"], bag.dags["enos_flows_backfill"]
    variables = bag.dags["enos_flows_sync_variables"]
    results: dict[str, Any] = {}
    for dag, params in (
        (sync, {"since": since, "until": until}),
        (backfill, {"from": start, "to": end, "window_hours": 0.5}),
        (variables, {"since": since, "until": until}),
    ):
        run = dag.test(run_conf=params)
        results[dag.dag_id] = {"state": str(run.state), "tasks": task_instances(run.run_id)}
    results["max_active_tis_per_dagrun"] = backfill.get_task("load").max_active_tis_per_dagrun
    results["queued_at_once"] = {
        str(slots): queued_at_once(backfill.dag_id, slots) for slots in (2, 4, 16)
    }
    return results


def task_instances(run_id: str) -> list[dict[str, Any]]:
    """What Airflow recorded of each task instance of a run, with its XCom return value."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found = []
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id)).all()
        for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index)):
            value = session.scalar(
                select(XComModel.value).where(
                    XComModel.run_id == run_id,
                    XComModel.task_id == ti.task_id,
                    XComModel.map_index == ti.map_index,
                    XComModel.key == "return_value",
                )
            )
            found.append(
                {
                    "task_id": ti.task_id,
                    "map_index": ti.map_index,
                    "state": str(ti.state),
                    "pool": ti.pool,
                    "pool_slots": ti.pool_slots,
                    "start": ti.start_date.isoformat() if ti.start_date else None,
                    "end": ti.end_date.isoformat() if ti.end_date else None,
                    "xcom": value,
                }
            )
    return found


def queued_at_once(dag_id: str, slots: int) -> int:
    """How many of the backfill's mapped tasks the scheduler would start at once with a
    pool of ``slots``: its run's tasks set back to scheduled, then one pass of the
    scheduler's own selection (pool limits, max active tasks per run)."""
    from airflow.executors.executor_loader import ExecutorLoader
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select, update

    airflow("pools", "set", "enos_api", str(slots), "EnOS gateway")
    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)).one()
        run.state = DagRunState.RUNNING
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=False))
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.run_id == run.run_id, TaskInstance.task_id == "load")
            .values(state=TaskInstanceState.SCHEDULED)
        )
        session.flush()
        executor = ExecutorLoader.get_default_executor()
        runner = SchedulerJobRunner(job=Job(), executors=[executor])
        queued = runner._executable_task_instances_to_queued(max_tis=64, session=session)
        session.rollback()
    return len(queued)


if __name__ == "__main__":
    outcome = main(*sys.argv[1:5])
    print(json.dumps(outcome, default=str))
