-- BI views over the extractor's tables, SQLite dialect (3.25 or later: window functions).
--
-- Install with extractor.views.create_views(engine), or run this file with the sqlite3
-- shell after the first load. Re-running it replaces every view. The views read the
-- default table names (no table_prefix). views_postgresql.sql defines the same views,
-- column for column, with the same numbers.
--
-- Conventions shared by every view:
--   * A flow is a flow_id; flow_name is the name on the flow's most recent instance that
--     has one, so a renamed flow stays one row. Instances without a flow_id belong to no
--     flow and are left out.
--   * Flow-instance statuses: succeeded = 1 (SUCCESS); failed = -1, 4, 7 (FAIL,
--     INTERNAL_ERROR, TIMEOUT); other terminal = 8, 10 (CANCEL, SKIP). Every other status,
--     unknown codes and a missing status included, is not terminal: the run has not been
--     seen to finish.
--   * Timestamps are ISO-8601 UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff+00:00', written by the
--     loader in that one fixed-width form, so text order is time order: ORDER BY and MAX
--     use the text as it is. Comparisons with the current time go through julianday(),
--     which reads the offset and keeps milliseconds. Booleans are 0 or 1.

-- Runs per flow and business date by outcome. success_rate = succeeded / terminal runs,
-- null while no run of the day has finished.
DROP VIEW IF EXISTS v_flow_daily_success;
CREATE VIEW v_flow_daily_success AS
WITH flow_names AS (
    SELECT flow_id, flow_name
    FROM (
        SELECT
            flow_id,
            flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
            ) AS recency
        FROM flow_instances
        WHERE flow_id IS NOT NULL AND flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
),
counts AS (
    SELECT
        flow_id,
        cal_dt,
        COUNT(*) AS runs,
        COUNT(CASE WHEN status = 1 THEN 1 END) AS succeeded,
        COUNT(CASE WHEN status IN (-1, 4, 7) THEN 1 END) AS failed,
        COUNT(CASE WHEN status IN (8, 10) THEN 1 END) AS other_terminal
    FROM flow_instances
    WHERE flow_id IS NOT NULL
    GROUP BY flow_id, cal_dt
)
SELECT
    c.flow_id,
    n.flow_name,
    c.cal_dt,
    c.runs,
    c.succeeded,
    c.failed,
    c.other_terminal,
    c.runs - c.succeeded - c.failed - c.other_terminal AS still_running,
    CAST(c.succeeded AS REAL) / NULLIF(c.succeeded + c.failed + c.other_terminal, 0)
        AS success_rate
FROM counts AS c
LEFT JOIN flow_names AS n ON n.flow_id = c.flow_id;

-- Start delay and duration percentiles per flow over the runs that have the value.
-- Percentiles interpolate linearly between the two nearest ranks, exactly as
-- PostgreSQL's percentile_cont: with the n values sorted ascending and indexed from 0,
-- position = p * (n - 1), lower = floor(position), weight = position - lower, and
-- result = v[lower] + weight * (v[lower + 1] - v[lower]), or v[lower] when weight is 0.
-- The arithmetic is done in the same order, so both dialects return the same doubles.
DROP VIEW IF EXISTS v_flow_timing;
CREATE VIEW v_flow_timing AS
WITH flow_names AS (
    SELECT flow_id, flow_name
    FROM (
        SELECT
            flow_id,
            flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
            ) AS recency
        FROM flow_instances
        WHERE flow_id IS NOT NULL AND flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
),
runs AS (
    SELECT flow_id, COUNT(*) AS runs, MAX(duration_s) AS max_duration_s
    FROM flow_instances
    WHERE flow_id IS NOT NULL
    GROUP BY flow_id
),
samples AS (
    SELECT flow_id, 'start_delay_s' AS metric, start_delay_s AS value
    FROM flow_instances
    WHERE flow_id IS NOT NULL AND start_delay_s IS NOT NULL
    UNION ALL
    SELECT flow_id, 'duration_s' AS metric, duration_s AS value
    FROM flow_instances
    WHERE flow_id IS NOT NULL AND duration_s IS NOT NULL
),
ranked AS (
    SELECT
        flow_id,
        metric,
        value,
        ROW_NUMBER() OVER (PARTITION BY flow_id, metric ORDER BY value) - 1 AS value_index
    FROM samples
),
fractions (label, fraction) AS (
    VALUES ('p50', 0.5), ('p90', 0.9), ('p99', 0.99)
),
positions AS (
    SELECT
        s.flow_id,
        s.metric,
        f.label,
        f.fraction * (s.n - 1) AS position,
        -- CAST truncates, which is floor() for a position that is never negative.
        CAST(f.fraction * (s.n - 1) AS INTEGER) AS lower_index
    FROM (
        SELECT flow_id, metric, COUNT(*) AS n FROM samples GROUP BY flow_id, metric
    ) AS s
    CROSS JOIN fractions AS f
),
bounds AS (
    SELECT
        p.flow_id,
        p.metric,
        p.label,
        p.position - p.lower_index AS weight,
        MAX(CASE WHEN r.value_index = p.lower_index THEN r.value END) AS lower_value,
        MAX(CASE WHEN r.value_index = p.lower_index + 1 THEN r.value END) AS upper_value
    FROM positions AS p
    JOIN ranked AS r
        ON r.flow_id = p.flow_id
        AND r.metric = p.metric
        AND r.value_index IN (p.lower_index, p.lower_index + 1)
    GROUP BY p.flow_id, p.metric, p.label, p.position, p.lower_index
),
percentiles AS (
    SELECT
        flow_id,
        metric,
        label,
        CASE
            WHEN weight = 0 THEN lower_value
            ELSE lower_value + weight * (upper_value - lower_value)
        END AS value
    FROM bounds
)
SELECT
    r.flow_id,
    n.flow_name,
    r.runs,
    MAX(CASE WHEN p.metric = 'start_delay_s' AND p.label = 'p50' THEN p.value END)
        AS start_delay_p50_s,
    MAX(CASE WHEN p.metric = 'start_delay_s' AND p.label = 'p90' THEN p.value END)
        AS start_delay_p90_s,
    MAX(CASE WHEN p.metric = 'start_delay_s' AND p.label = 'p99' THEN p.value END)
        AS start_delay_p99_s,
    MAX(CASE WHEN p.metric = 'duration_s' AND p.label = 'p50' THEN p.value END)
        AS duration_p50_s,
    MAX(CASE WHEN p.metric = 'duration_s' AND p.label = 'p90' THEN p.value END)
        AS duration_p90_s,
    MAX(CASE WHEN p.metric = 'duration_s' AND p.label = 'p99' THEN p.value END)
        AS duration_p99_s,
    r.max_duration_s
FROM runs AS r
LEFT JOIN flow_names AS n ON n.flow_id = r.flow_id
LEFT JOIN percentiles AS p ON p.flow_id = r.flow_id
GROUP BY r.flow_id, n.flow_name, r.runs, r.max_duration_s;

-- Task failures per flow and task, most failures first. A run is one task instance;
-- a failure is a task status of FAIL, FAILED, INTERNAL_ERROR or TIMEOUT (the statuses
-- behind flow_instances.failed_task_count). last_failure_time is the trigger_time of the
-- flow instance that owns the latest failed task instance. Task instances without a
-- task_id are left out; task_name is the name on the task's most recent run.
DROP VIEW IF EXISTS v_task_failures;
CREATE VIEW v_task_failures AS
WITH flow_names AS (
    SELECT flow_id, flow_name
    FROM (
        SELECT
            flow_id,
            flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
            ) AS recency
        FROM flow_instances
        WHERE flow_id IS NOT NULL AND flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
),
task_runs AS (
    SELECT
        i.flow_id,
        t.task_id,
        t.task_name,
        i.trigger_time,
        t.status IN ('FAIL', 'FAILED', 'INTERNAL_ERROR', 'TIMEOUT') AS is_failure,
        ROW_NUMBER() OVER (
            PARTITION BY i.flow_id, t.task_id
            ORDER BY t.task_name IS NULL, i.trigger_time DESC, t.task_inst_id DESC
        ) AS recency
    FROM task_instances AS t
    JOIN flow_instances AS i ON i.instance_id = t.instance_id
    WHERE i.flow_id IS NOT NULL AND t.task_id IS NOT NULL
)
SELECT
    r.flow_id,
    n.flow_name,
    r.task_id,
    MAX(CASE WHEN r.recency = 1 THEN r.task_name END) AS task_name,
    COUNT(*) AS runs,
    COUNT(CASE WHEN r.is_failure THEN 1 END) AS failures,
    CAST(COUNT(CASE WHEN r.is_failure THEN 1 END) AS REAL) / COUNT(*) AS failure_rate,
    MAX(CASE WHEN r.is_failure THEN r.trigger_time END) AS last_failure_time
FROM task_runs AS r
LEFT JOIN flow_names AS n ON n.flow_id = r.flow_id
GROUP BY r.flow_id, n.flow_name, r.task_id
ORDER BY failures DESC, failure_rate DESC, r.flow_id, r.task_id;

-- The slowest flow runs, ranked by duration_s (ties share a rank); flow_duration_rank
-- ranks a run within its own flow. Runs without a duration (not finished, or never
-- started) are left out.
--
-- Why no task-level durations: the task entries of Get Flow Instance's graph carry only
-- taskInstId, taskId, taskName, nodeId, status and the node's canvas position; the API
-- reports no start or end time per task. A task's run time cannot be measured from what
-- is extracted, so a long flow run and its task_count are the closest available signal
-- of a slow task.
DROP VIEW IF EXISTS v_slowest_flow_runs;
CREATE VIEW v_slowest_flow_runs AS
WITH flow_names AS (
    SELECT flow_id, flow_name
    FROM (
        SELECT
            flow_id,
            flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
            ) AS recency
        FROM flow_instances
        WHERE flow_id IS NOT NULL AND flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
)
SELECT
    RANK() OVER (ORDER BY i.duration_s DESC) AS duration_rank,
    RANK() OVER (PARTITION BY i.flow_id ORDER BY i.duration_s DESC) AS flow_duration_rank,
    i.instance_id,
    i.flow_id,
    n.flow_name,
    i.cal_dt,
    i.status,
    i.status_name,
    i.trigger_time,
    i.start_time,
    i.end_time,
    i.duration_s,
    i.task_count,
    i.failed_task_count
FROM flow_instances AS i
LEFT JOIN flow_names AS n ON n.flow_id = i.flow_id
WHERE i.flow_id IS NOT NULL AND i.duration_s IS NOT NULL
ORDER BY i.duration_s DESC, i.instance_id;

-- Each flow's latest instance (by trigger_time) and whether the flow is running or
-- overdue. is_overdue: the latest instance's next_trigger_time, the next fire of its
-- schedule, is before the current time, yet no instance with a later trigger_time has
-- been loaded, so the next expected run has not appeared. "Current time" is the clock at
-- query time: a stale extract makes flows look overdue. seconds_overdue is null unless
-- is_overdue. Flows without a known schedule (next_trigger_time null) are never overdue.
DROP VIEW IF EXISTS v_flow_run_status;
CREATE VIEW v_flow_run_status AS
WITH flow_names AS (
    SELECT flow_id, flow_name
    FROM (
        SELECT
            flow_id,
            flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
            ) AS recency
        FROM flow_instances
        WHERE flow_id IS NOT NULL AND flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
),
latest AS (
    SELECT
        flow_id,
        instance_id,
        status,
        status_name,
        trigger_time,
        start_time,
        next_trigger_time,
        julianday('now') - julianday(next_trigger_time) AS days_late,
        ROW_NUMBER() OVER (
            PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
        ) AS recency
    FROM flow_instances
    WHERE flow_id IS NOT NULL AND trigger_time IS NOT NULL
)
SELECT
    l.flow_id,
    n.flow_name,
    l.instance_id,
    l.status,
    l.status_name,
    l.trigger_time,
    l.start_time,
    l.next_trigger_time,
    l.status IS NULL OR l.status NOT IN (-1, 1, 4, 7, 8, 10) AS is_running,
    COALESCE(l.days_late > 0, 0) AS is_overdue,
    CASE WHEN l.days_late > 0 THEN l.days_late * 86400.0 END AS seconds_overdue
FROM latest AS l
LEFT JOIN flow_names AS n ON n.flow_id = l.flow_id
WHERE l.recency = 1;

-- Dependencies between flows: one row per (upstream flow, downstream flow) pair seen in
-- flow_dependencies, where the downstream flow owns the instance whose graph names the
-- upstream flow. A flow that waits on its own previous run appears as an edge to itself.
-- instance_count counts the downstream instances that declare the dependency;
-- last_seen_trigger_time is the latest of their trigger_times. upstream_flow_name is the
-- flow's own latest name when it is extracted too, else the latest name the dependency
-- entries give. Entries without the upstream flow_id are left out.
DROP VIEW IF EXISTS v_flow_dependency_edges;
CREATE VIEW v_flow_dependency_edges AS
WITH flow_names AS (
    SELECT flow_id, flow_name
    FROM (
        SELECT
            flow_id,
            flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY flow_id ORDER BY trigger_time DESC, instance_id DESC
            ) AS recency
        FROM flow_instances
        WHERE flow_id IS NOT NULL AND flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
),
edges AS (
    SELECT
        d.flow_id AS upstream_flow_id,
        d.flow_name AS upstream_flow_name,
        i.flow_id AS downstream_flow_id,
        i.instance_id,
        d.node_id,
        i.trigger_time
    FROM flow_dependencies AS d
    JOIN flow_instances AS i ON i.instance_id = d.instance_id
    WHERE d.flow_id IS NOT NULL AND i.flow_id IS NOT NULL
),
dependency_names AS (
    SELECT upstream_flow_id, upstream_flow_name
    FROM (
        SELECT
            upstream_flow_id,
            upstream_flow_name,
            ROW_NUMBER() OVER (
                PARTITION BY upstream_flow_id
                ORDER BY trigger_time DESC, instance_id DESC, node_id DESC
            ) AS recency
        FROM edges
        WHERE upstream_flow_name IS NOT NULL
    ) AS named
    WHERE recency = 1
),
pairs AS (
    SELECT
        upstream_flow_id,
        downstream_flow_id,
        COUNT(DISTINCT instance_id) AS instance_count,
        MAX(trigger_time) AS last_seen_trigger_time
    FROM edges
    GROUP BY upstream_flow_id, downstream_flow_id
)
SELECT
    p.upstream_flow_id,
    COALESCE(up.flow_name, dn.upstream_flow_name) AS upstream_flow_name,
    p.downstream_flow_id,
    down.flow_name AS downstream_flow_name,
    p.instance_count,
    p.last_seen_trigger_time
FROM pairs AS p
LEFT JOIN flow_names AS up ON up.flow_id = p.upstream_flow_id
LEFT JOIN dependency_names AS dn ON dn.upstream_flow_id = p.upstream_flow_id
LEFT JOIN flow_names AS down ON down.flow_id = p.downstream_flow_id;
