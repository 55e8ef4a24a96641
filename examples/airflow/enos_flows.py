"""The EnOS flow extractor's DAGs: a sync every 15 minutes and a backfill to trigger by hand.

Copy this file into Airflow's DAG folder, then create the pool and the connections
(README, "Running on a schedule"). Keep ``pool_size`` equal to the pool's slots and
``gateway_max_rps`` to what the gateway allows this connector.
"""

from extractor.airflow import backfill_dag, sync_dag

SETTINGS = {"pool": "enos_api", "pool_size": 4, "gateway_max_rps": 20.0}

sync = sync_dag(**SETTINGS)
backfill = backfill_dag(**SETTINGS)
