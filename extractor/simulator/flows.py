"""The simulated flows: names, owners, schedules, task pools and their DAGs.

Everything about a flow is drawn from ``random.Random(f"{seed}:flow:{flow_id}")``, so a
flow looks the same in every run with the same seed, whatever else was asked first.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from extractor.simulator.schedules import FireTimes

FIRST_FLOW_ID = 1000
MAX_TASKS = 60
"""Size of every flow's task pool; an instance runs a prefix of it."""

_FIRST_TASK_ID = 100_000

_CHINESE_NAMES = (
    "风机日报汇总",
    "数据同步-升压站",
    "光伏功率预测",
    "储能SOC统计",
    "告警明细清洗",
    "电量结算日报",
    "设备台账同步",
    "风速数据补采",
    "逆变器效率分析",
    "场站可利用率",
)
_ACCENTED_NAMES = (
    "Météo import",
    "Données éoliennes",
    "Übertragung Zählerstände",
    "Análisis de producción",
    "Prévision PV",
    "Contrôle qualité SCADA",
)
_ASCII_NAMES = (
    "daily_kpi_rollup",
    "scada-sync",
    "turbine availability",
    "ods_meter_reading_hi",
    "dwd_alarm_detail",
    "grid curtailment report",
    "ads_energy_settlement",
    "pv_string_check",
)
_SITES = ("一期", "二期", "华北", "华东", "north", "site-07", "Fécamp", "")
_TASK_WORDS = (
    "extract_scada",
    "清洗-风速",
    "load_dw",
    "聚合日报",
    "校验",
    "sync_mysql",
    "export_csv",
    "计算发电量",
    "check_quality",
    "推送告警",
    "agrégation",
    "dedupe",
)
_USERS = (
    "zhang.wei",
    "li.na",
    "wang.fang",
    "liu.yang",
    "chen.jing",
    "zhao.lei",
    "sun.li",
    "ops_bot",
    "j.müller",
    "a.dupont",
    "m.garcía",
    "k.tanaka",
)
_TEAMS = ("ops", "wind", "solar", "storage", "finance", "grid")
_PARAMETER_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("env", ("product", "staging")),
    ("region", ("华东", "华北", "西北", "Île-de-France", "north")),
    ("bizdate", ("${yyyymmdd}",)),
    ("site", ("升压站A", "windfarm-07", "Parc éolien de Fécamp")),
    ("batch_size", ("500", "1000", "5000")),
    ("threshold", ("0.85", "0.9")),
    ("owner_team", _TEAMS),
)

_KINDS = (
    "every-n-minutes",
    "every-minute",
    "hourly",
    "every-n-hours",
    "daily",
    "weekly",
    "weekdays",
    "monthly",
    "month-last",
)
_KIND_WEIGHTS = (12, 1, 25, 6, 34, 8, 6, 5, 3)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of a flow's pool, with its place on the canvas."""

    task_id: int
    name: str
    x: float
    y: float
    parents: tuple[int, ...]
    """Indices of upstream tasks in the pool; always lower than this task's index."""


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """Everything that stays the same across a flow's instances."""

    flow_id: int
    name: str
    schedule: FireTimes
    owners: tuple[str, ...]
    creator: str
    do_as: str
    alert_mode: int
    alert_to: str
    app_id: str
    is_virtual: bool
    has_edit_pri: bool
    parameters: tuple[tuple[str, str], ...]
    tasks: tuple[TaskSpec, ...]
    upstream_flows: tuple[int, ...]
    """Flows this flow waits for; they feed the pool's first task."""

    @property
    def owner(self) -> str:
        """The instance owner: the first of the flow's owners."""
        return self.owners[0]


def _float32(value: float) -> float:
    """Round-trip through a 32-bit float, as the doc's ``0.008100000381469727`` did."""
    result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return result


def _schedule(kind: str, rng: random.Random) -> FireTimes:
    every_hour = tuple(range(24))
    minute, hour = rng.randrange(60), rng.randrange(24)
    if kind == "every-n-minutes":
        step = rng.choice((5, 10, 15, 20, 30))
        phase = 0 if rng.random() < 0.7 else rng.randrange(step)
        return FireTimes(
            f"0 {phase}/{step} * * * ? *", "mi", tuple(range(phase, 60, step)), every_hour
        )
    if kind == "every-minute":
        # The seed document's schedule; Quartz's 1/1 skips minute 0 of every hour.
        return FireTimes("0 1/1 * * * ? *", "mi", tuple(range(1, 60)), every_hour)
    if kind == "hourly":
        return FireTimes(f"0 {minute} * * * ? *", "H", (minute,), every_hour)
    if kind == "every-n-hours":
        step = rng.choice((2, 3, 4, 6))
        phase = rng.randrange(step)
        return FireTimes(
            f"0 {minute} {phase}/{step} * * ? *", "H", (minute,), tuple(range(phase, 24, step))
        )
    if kind == "daily":
        return FireTimes(f"0 {minute} {hour} * * ? *", "D", (minute,), (hour,))
    at = ((minute,), (hour,))
    if kind == "weekly":
        day = rng.randint(1, 7)  # Quartz: 1=SUN .. 7=SAT
        return FireTimes(f"0 {minute} {hour} ? * {day} *", "W", *at, "weekday", day)
    if kind == "weekdays":
        return FireTimes(f"0 {minute} {hour} ? * MON-FRI *", "W", *at, "weekdays")
    if kind == "monthly":
        day = rng.randint(1, 28)
        return FireTimes(f"0 {minute} {hour} {day} * ? *", "M", *at, "month-day", day)
    return FireTimes(f"0 {minute} {hour} L * ? *", "M", *at, "month-last")


def _flow_name(flow_id: int, rng: random.Random) -> str:
    family = rng.random()
    if family < 0.45:
        base = rng.choice(_CHINESE_NAMES)
        site = rng.choice(_SITES)
        name = f"{base}-{site}" if site else base
    elif family < 0.65:
        name = rng.choice(_ACCENTED_NAMES)
    else:
        name = rng.choice(_ASCII_NAMES)
    return f"{name} {flow_id % 97}" if rng.random() < 0.5 else f"{name}_{flow_id}"


def _task_pool(flow_index: int, rng: random.Random) -> tuple[TaskSpec, ...]:
    depths: list[int] = []
    layer_sizes: dict[int, int] = {}
    pool: list[TaskSpec] = []
    for index in range(MAX_TASKS):
        parents: tuple[int, ...] = ()
        if index and rng.random() >= 0.12:
            low = max(0, index - 6)
            first = index - 1 if rng.random() < 0.6 else rng.randrange(low, index)
            parents = (first,)
            if rng.random() < 0.3 and index >= 2:
                second = rng.randrange(low, index)
                parents = tuple(sorted({first, second}))
        depth = 1 + max((depths[p] for p in parents), default=-1)
        depths.append(depth)
        row = layer_sizes.get(depth, 0)
        layer_sizes[depth] = row + 1
        x = round(0.004 + 0.0045 * depth + rng.uniform(0, 0.0008), 4)
        y = round(0.002 + 0.003 * row + rng.uniform(0, 0.0006), 4)
        if rng.random() < 0.2:
            y = _float32(y)
        word = rng.choice(_TASK_WORDS)
        pool.append(
            TaskSpec(_FIRST_TASK_ID + flow_index * 64 + index, f"{word}_{index}", x, y, parents)
        )
    return tuple(pool)


def build_flow(seed: int, flow_id: int, flow_count: int) -> FlowSpec:
    """Draw flow ``flow_id`` of a population of ``flow_count`` flows.

    The first flows take one schedule shape each, so every shape exists in any
    population of at least nine flows; the rest draw a shape by weight.
    """
    index = flow_id - FIRST_FLOW_ID
    rng = random.Random(f"{seed}:flow:{flow_id}")
    kind = _KINDS[index] if index < len(_KINDS) else rng.choices(_KINDS, _KIND_WEIGHTS)[0]
    owners = tuple(rng.sample(_USERS, rng.choice((1, 1, 2, 3))))
    parameters: tuple[tuple[str, str], ...] = ()
    if rng.random() >= 0.25:
        chosen = rng.sample(_PARAMETER_CHOICES, rng.randint(1, 4))
        parameters = tuple((key, rng.choice(values)) for key, values in chosen)
    upstream: tuple[int, ...] = ()
    others = [f for f in range(FIRST_FLOW_ID, FIRST_FLOW_ID + flow_count) if f != flow_id]
    if others and rng.random() < 0.3:
        upstream = tuple(sorted(rng.sample(others, min(len(others), rng.randint(1, 3)))))
    alert_mode = rng.randrange(4)
    return FlowSpec(
        flow_id=flow_id,
        name=_flow_name(flow_id, rng),
        schedule=_schedule(kind, rng),
        owners=owners,
        creator=rng.choice((owners[0], rng.choice(_USERS))),
        do_as=f"bd_{rng.choice(_TEAMS)}_{rng.randint(1, 9):02d}",
        alert_mode=alert_mode,
        alert_to="" if alert_mode == 0 else ";".join(owners),
        app_id="" if rng.random() < 0.6 else f"app-{rng.randrange(16**6):06x}",
        is_virtual=rng.random() < 0.03,
        has_edit_pri=rng.random() < 0.6,
        parameters=parameters,
        tasks=_task_pool(index, rng),
        upstream_flows=upstream,
    )
