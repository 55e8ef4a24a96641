"""One instance's life: when it starts and ends, how it ends, and what is seen at ``now``.

An instance's randomness is drawn once, from ``random.Random(f"{seed}:{instance_id}")``,
into a :class:`Plan`. What the gateway reports is then a pure function of the plan and
the population's clock: nothing before the trigger, INIT/WAIT/READY until the start,
RUNNING until the end, then the outcome.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal, TypeVar, get_args

from extractor.simulator.flows import MAX_TASKS, FlowSpec

Quirk = Literal[
    "data-list",
    "graph-decoded",
    "parameters-decoded",
    "task-id-string",
    "graph-do-as",
    "graph-extra-keys",
    "graph-other-instance",
    "relations-from-to",
    "relations-pre-node",
    "relations-pairs",
]
"""Documented inconsistencies an instance may show; see :data:`DEFAULT_QUIRK_RATES`."""

QUIRKS: tuple[Quirk, ...] = get_args(Quirk)

DEFAULT_QUIRK_RATES: Mapping[Quirk, float] = MappingProxyType(
    {
        "data-list": 0.15,
        "graph-decoded": 0.10,
        "parameters-decoded": 0.10,
        "task-id-string": 0.20,
        "graph-do-as": 0.50,
        "graph-extra-keys": 0.50,
        # Off by default: a stale graph repeats another instance's task IDs, which a
        # row-count check would read as lost rows.
        "graph-other-instance": 0.0,
        "relations-from-to": 0.07,
        "relations-pre-node": 0.07,
        "relations-pairs": 0.06,
    }
)
"""Share of instances showing each quirk. The relation spellings exclude each other;
the rest use ``{"source": ..., "target": ...}``."""

_RELATION_QUIRKS: tuple[Quirk, ...] = ("relations-from-to", "relations-pre-node", "relations-pairs")

_OUTCOMES: tuple[tuple[int, float], ...] = (
    (1, 0.860),
    (-1, 0.040),
    (7, 0.015),
    (4, 0.010),
    (8, 0.015),
    (10, 0.020),
    (3, 0.008),
    (9, 0.008),
    (5, 0.008),
    (6, 0.005),
    (0, 0.005),
    (2, 0.006),
)
"""Outcomes and their shares; every documented code appears.

Most outcomes are terminal and reached at the end of the run. A few per cent stay
non-terminal for good, as stuck instances do on a real scheduler: INIT, WAIT and READY
never start; RUNNING hangs part-way; SUSPEND stops part-way without an end; RERUN ends
and then waits for its rerun with every task back at INIT.
"""

_SECOND = timedelta(seconds=1)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Plan:
    """The random draws behind one instance."""

    instance_id: str
    flow: FlowSpec
    trigger: datetime
    start: datetime
    end: datetime
    outcome: int
    cut: float
    """Where in task order a failure, cancel or suspension happens, in ``[0, 1)``."""
    task_count: int
    record_lag_s: int
    quirks: frozenset[Quirk]


@dataclass(frozen=True, slots=True)
class Observation:
    """What the gateway reports about an instance at one moment."""

    status: int
    start: datetime | None
    end: datetime | None
    record_time: datetime
    progress: float
    """Share of the run done, for RUNNING and SUSPEND task statuses."""


def pick(point: float, shares: Iterable[tuple[_T, float]]) -> _T | None:
    """Return the first choice whose running total of shares passes ``point``, if any.

    >>> pick(0.25, [("a", 0.2), ("b", 0.1)]), pick(0.5, [("a", 0.2), ("b", 0.1)])
    ('b', None)
    """
    for choice, share in shares:
        point -= share
        if point < 0:
            return choice
    return None


def _draw_quirks(rng: random.Random, rates: Mapping[Quirk, float]) -> frozenset[Quirk]:
    chosen = {q for q in QUIRKS if q not in _RELATION_QUIRKS and rng.random() < rates[q]}
    spelling = pick(rng.random(), ((q, rates[q]) for q in _RELATION_QUIRKS))
    return frozenset(chosen if spelling is None else chosen | {spelling})


def make_plan(
    seed: int,
    instance_id: str,
    flow: FlowSpec,
    trigger: datetime,
    rates: Mapping[Quirk, float],
) -> Plan:
    """Draw the plan of one instance, deterministically from ``(seed, instance_id)``."""
    rng = random.Random(f"{seed}:{instance_id}")
    quirks = _draw_quirks(rng, rates)
    tasks = min(MAX_TASKS, max(1, round(rng.lognormvariate(math.log(8), 0.8))))
    kind = rng.random()
    if kind < 0.85:
        delay = rng.randint(1, 59)
    elif kind < 0.98:
        delay = rng.randint(60, 1800)
    else:
        delay = rng.randint(3600, 6 * 3600)
    outcome = pick(rng.random(), _OUTCOMES)
    outcome = 1 if outcome is None else outcome
    duration = min(6 * 3600, max(1, round(rng.lognormvariate(math.log(20 * tasks), 0.9))))
    if outcome == 7:
        duration = 7200 + rng.randint(0, 90)
    elif outcome == 10 or flow.is_virtual:
        duration = rng.randint(0, 2)
    start = trigger + timedelta(seconds=delay)
    return Plan(
        instance_id=instance_id,
        flow=flow,
        trigger=trigger,
        start=start,
        end=start + timedelta(seconds=duration),
        outcome=outcome,
        cut=rng.random(),
        task_count=tasks,
        record_lag_s=rng.randint(0, 150),
        quirks=quirks,
    )


def is_missed(seed: int, instance_id: str, rate: float) -> bool:
    """Tell whether the scheduler never started this fire (a missed run), at ``rate``.

    The draw has a stream of its own, so planting missed runs leaves every other
    instance's plan as it was.
    """
    return rate > 0 and random.Random(f"{seed}:missed:{instance_id}").random() < rate


def _before_start(plan: Plan, now: datetime) -> int:
    waited = (now - plan.trigger) / max(plan.start - plan.trigger, _SECOND)
    if waited < 0.2:
        return 0
    return 5 if waited < 0.7 else 6


def observe(plan: Plan, now: datetime) -> Observation | None:
    """Return what the gateway reports about ``plan``'s instance at ``now``."""
    if now < plan.trigger:
        return None
    outcome = plan.outcome
    if outcome in (0, 5, 6):
        return Observation(outcome, None, None, plan.trigger, 0.0)
    if now < plan.start:
        return Observation(_before_start(plan, now), None, None, plan.trigger, 0.0)
    running_until = plan.end
    if outcome in (2, 3):
        running_until = plan.start + (plan.end - plan.start) * plan.cut
    if now < running_until or outcome == 2:
        spent = (min(now, running_until) - plan.start) / max(plan.end - plan.start, _SECOND)
        return Observation(2, plan.start, None, plan.start, min(spent, 0.999))
    if outcome == 3:
        return Observation(3, plan.start, None, running_until, plan.cut)
    record = plan.end + timedelta(seconds=plan.record_lag_s)
    return Observation(outcome, plan.start, plan.end, min(record, max(now, plan.end)), 1.0)


def _descendants(flow: FlowSpec, root: int, count: int) -> set[int]:
    found = {root}
    for index in range(root + 1, count):
        if any(p in found for p in flow.tasks[index].parents):
            found.add(index)
    found.discard(root)
    return found


def task_statuses(plan: Plan, seen: Observation) -> list[str]:
    """Return the status string of each task, consistent with the instance status."""
    count, status = plan.task_count, seen.status
    if status == 1:
        return ["SUCCESS"] * count
    if status == 10:
        return ["NONE"] * count
    if status in (0, 5, 6, 9):
        return ["INIT"] * count
    done = min(count - 1, int(seen.progress * count))
    if status == 2:
        return ["SUCCESS"] * done + ["RUNNING"] + ["INIT"] * (count - done - 1)
    if status == 3:
        return ["SUCCESS"] * done + ["INIT"] * (count - done)
    cut = min(count - 1, int(plan.cut * count))
    if status == 8:
        return ["SUCCESS"] * cut + ["CANCEL"] * (count - cut)
    blocked = _descendants(plan.flow, cut, count)
    return ["FAIL" if i == cut else "NONE" if i in blocked else "SUCCESS" for i in range(count)]
