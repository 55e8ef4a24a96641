"""A deterministic, lazy population of flows and their instances.

Instances are the fire times of the flows' schedules in ``[start, end)`` that are not
in the future of the population's clock ``now``. Nothing is materialised: IDs are
enumerated by merging the flows' schedules, and an instance's payload is rebuilt from
``(seed, instance_id)`` whenever it is asked for.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from extractor.errors import ConfigError
from extractor.simulator.flows import FIRST_FLOW_ID, FlowSpec, build_flow
from extractor.simulator.lifecycle import (
    DEFAULT_QUIRK_RATES,
    QUIRKS,
    Observation,
    Plan,
    Quirk,
    is_missed,
    make_plan,
    observe,
)
from extractor.simulator.payload import Upstream, build_instance, instance_id_of
from extractor.tables._schema import STATUS_NAMES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MAX_WIDENINGS = 64
DEFAULT_START = datetime(2026, 1, 1)
DEFAULT_END = datetime(2026, 3, 1)
PERIODIC = 1
"""List Flow Instances' ``type`` for scheduled instances."""
MANUAL, TEMPORARY = 0, 2


def flow_type(flow_id: int) -> int:
    """The instance type of a flow's runs: one flow in ten is manual (0), one in twenty
    temporary (2), the rest periodic (1). Their instances fire on the schedule alike.

    >>> [flow_type(f) for f in (1000, 1003, 1007, 1010, 1017)]
    [1, 0, 1, 1, 2]
    """
    slot = flow_id % 20
    return MANUAL if slot in (3, 13) else TEMPORARY if slot == 17 else PERIODIC


def _split_id(instance_id: str) -> tuple[int, datetime]:
    """Return the flow ID and trigger :func:`instance_id_of` wrote; raise ValueError if it
    could not have written ``instance_id``."""
    flow_part, _, clock = instance_id.partition("-")
    if len(clock) != 14 or not clock.isdigit() or not flow_part.isdigit():
        raise ValueError(instance_id)
    trigger = datetime(
        int(clock[:4]),
        int(clock[4:6]),
        int(clock[6:8]),
        int(clock[8:10]),
        int(clock[10:12]),
        int(clock[12:]),
    )
    return int(flow_part), trigger


class Population:
    """Flows and their instances, all derived from a seed.

    Args:
        seed: Everything random is derived from it and the flow or instance ID.
        flows: Number of flows; their IDs are 1000, 1001, ...
        start: First moment (inclusive) at which flows fire, wall-clock in ``timezone``.
        end: Moment (exclusive) from which flows no longer fire.
        timezone: The server's zone, in which every timestamp is written.
        now: The population's clock (default ``end``). Instances triggered later do not
            exist yet; the status of the others depends on it.
        quirk_rates: Overrides of :data:`DEFAULT_QUIRK_RATES`, e.g. ``{"data-list": 1}``.
        missed_rate: Share of fires the scheduler never started: no instance has their
            ID, the search skips them and :meth:`missed` lists them. Off by default.

    Naive datetimes are wall-clock times in ``timezone``; aware ones are converted.
    """

    def __init__(
        self,
        seed: int = 42,
        flows: int = 200,
        start: datetime = DEFAULT_START,
        end: datetime = DEFAULT_END,
        *,
        timezone: str = "Asia/Shanghai",
        now: datetime | None = None,
        quirk_rates: Mapping[Quirk, float] | None = None,
        missed_rate: float = 0.0,
    ) -> None:
        if flows < 1:
            raise ConfigError(f"a population needs at least one flow, got {flows}")
        self.seed = seed
        self.flow_count = flows
        self.zone = ZoneInfo(timezone)
        self.start = self._wall(start)
        self.end = self._wall(end)
        if self.end <= self.start:
            raise ConfigError("the population's end must be after its start")
        self._now = self.end if now is None else self._wall(now)
        rates = dict(DEFAULT_QUIRK_RATES)
        for quirk, rate in (quirk_rates or {}).items():
            if quirk not in rates or not 0 <= rate <= 1:
                raise ConfigError(f"bad quirk rate {quirk!r}: {rate!r}")
            rates[quirk] = rate
        if sum(rates[q] for q in QUIRKS if q.startswith("relations-")) > 1:
            raise ConfigError("the relation spellings' rates add up to more than 1")
        self.quirk_rates: Mapping[Quirk, float] = rates
        if not 0 <= missed_rate <= 1:
            raise ConfigError(f"bad missed rate: {missed_rate!r}")
        self.missed_rate = missed_rate
        self._flow = functools.cache(functools.partial(build_flow, seed, flow_count=flows))

    def __repr__(self) -> str:
        return (
            f"Population(seed={self.seed}, flows={self.flow_count}, start={self.start}, "
            f"end={self.end}, timezone={self.zone.key!r}, now={self._now})"
        )

    def _wall(self, moment: datetime) -> datetime:
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.zone).replace(tzinfo=None)
        return moment

    @property
    def now(self) -> datetime:
        """The population's clock, wall-clock in its zone."""
        return self._now

    @now.setter
    def now(self, moment: datetime) -> None:
        self._now = self._wall(moment)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward: new instances appear, running ones finish."""
        self._now += delta

    def flow(self, flow_id: int) -> FlowSpec:
        """Return flow ``flow_id``; raise KeyError for an ID outside the population."""
        if not FIRST_FLOW_ID <= flow_id < FIRST_FLOW_ID + self.flow_count:
            raise KeyError(flow_id)
        return self._flow(flow_id)

    def flows(self) -> list[FlowSpec]:
        """Return every flow, by ID."""
        return [self.flow(f) for f in range(FIRST_FLOW_ID, FIRST_FLOW_ID + self.flow_count)]

    def _stop(self) -> datetime:
        return min(self.end, self._now.replace(microsecond=0) + _SECOND)

    def count(self) -> int:
        """Count the instances that exist at ``now``."""
        if self.missed_rate:
            return sum(1 for _ in self.ids())
        stop = self._stop()
        return sum(f.schedule.count(self.start, stop) for f in self.flows())

    def _widen_for(self, wanted: int) -> None:
        """Move ``start`` back, in whole days, until ``wanted`` instances exist.

        Moving the start back rather than the end forward keeps every added instance
        in the past of ``now``, so it has a final status like the others.
        """
        for _ in range(_MAX_WIDENINGS):
            have = self.count()
            if have >= wanted:
                return
            span_days = max((self._stop() - self.start) / timedelta(days=1), 1.0)
            per_day = have / span_days if have else 0.0
            days = math.ceil((wanted - have) / per_day * 1.05) + 1 if per_day else 7
            self.start -= timedelta(days=days)
        raise ConfigError(f"cannot widen the population to {wanted} instances")

    def _fires(
        self, start: datetime, stop: datetime, flows: Iterable[FlowSpec], *, missed: bool = False
    ) -> Iterator[str]:
        """Yield the IDs of the fires in ``[start, stop)`` that ran, or with ``missed`` the
        fires that did not, by trigger time then flow ID."""
        streams = [
            zip(f.schedule.iter_fires(start, stop), itertools.repeat(f.flow_id)) for f in flows
        ]
        for moment, flow_id in heapq.merge(*streams):
            instance_id = instance_id_of(flow_id, moment)
            if is_missed(self.seed, instance_id, self.missed_rate) == missed:
                yield instance_id

    def missed(self) -> list[tuple[int, datetime]]:
        """Return the fires planted as missed up to ``now``, as ``(flow_id, trigger)`` by
        trigger time then flow ID; the trigger is wall-clock in the population's zone.

        >>> p = Population(flows=9, start=datetime(2026, 1, 1), end=datetime(2026, 1, 2),
        ...                missed_rate=0.01)
        >>> flow_id, trigger = p.missed()[0]
        >>> p.instance(instance_id_of(flow_id, trigger)) is None
        True
        """
        fires = self._fires(self.start, self._stop(), self.flows(), missed=True)
        return [_split_id(instance_id) for instance_id in fires]

    def ids(self, limit: int | None = None) -> Iterator[str]:
        """Yield instance IDs by trigger time, then flow ID.

        With ``limit``, yield that many; when the window holds fewer, ``start`` moves
        back first (see :meth:`_widen_for`), so a million IDs cost no more memory than
        ten. The widened population stays the one the simulator serves.
        """
        if limit is not None:
            self._widen_for(limit)
        return itertools.islice(self._fires(self.start, self._stop(), self.flows()), limit)

    def plan(self, instance_id: str) -> Plan | None:
        """Return the draws behind an instance, or None for an ID that is no fire time."""
        try:
            flow_id, trigger = _split_id(instance_id)
            spec = self.flow(flow_id)
        except (KeyError, ValueError):
            return None
        if not self.start <= trigger < self.end or not spec.schedule.is_fire(trigger):
            return None
        if is_missed(self.seed, instance_id, self.missed_rate):
            return None
        return make_plan(self.seed, instance_id, spec, trigger, self.quirk_rates)

    def _observe(self, instance_id: str) -> tuple[Plan, Observation] | None:
        plan = self.plan(instance_id)
        if plan is None:
            return None
        seen = observe(plan, self._now)
        return None if seen is None else (plan, seen)

    def status(self, instance_id: str) -> int | None:
        """Return the instance's status code at ``now``, or None when it does not exist."""
        found = self._observe(instance_id)
        return None if found is None else found[1].status

    def _upstream(self, plan: Plan) -> list[Upstream]:
        found = []
        for flow_id in plan.flow.upstream_flows:
            spec = self.flow(flow_id)
            fired = spec.schedule.last_at_or_before(plan.trigger)
            if fired is None:
                continue
            upstream_id = instance_id_of(flow_id, fired)
            status = self.status(upstream_id)
            name = "NONE" if status is None else STATUS_NAMES[status]
            found.append((spec, upstream_id, name))
        return found

    def _build(self, plan: Plan, seen: Observation, *, listed: bool = False) -> dict[str, Any]:
        graph_instance = None
        if "graph-other-instance" in plan.quirks:
            previous = plan.flow.schedule.last_at_or_before(plan.trigger - _SECOND)
            if previous is not None:
                graph_instance = (instance_id_of(plan.flow.flow_id, previous), previous)
        return build_instance(plan, seen, self._upstream(plan), graph_instance, listed=listed)

    def instance(self, instance_id: str, *, listed: bool = False) -> dict[str, Any] | None:
        """Return Get Flow Instance's ``data`` object, or with ``listed`` the record List
        Flow Instances carries; None when there is no such ID."""
        found = self._observe(instance_id)
        return None if found is None else self._build(*found, listed=listed)

    def envelope(self, instance_id: str) -> dict[str, Any]:
        """Return the whole Get Flow Instance body, ``data`` as an object or a list of one.

        An unknown ID answers ``data: null`` or, for some IDs, ``data: []``.
        """
        found = self._observe(instance_id)
        if found is None:
            # Both spellings of "nothing" occur; which one is stable per ID.
            as_list = sum(instance_id.encode()) % 7 == 0
            return {"code": 0, "msg": "OK", "data": [] if as_list else None}
        data = self._build(*found)
        as_list = "data-list" in found[0].quirks
        return {"code": 0, "msg": "OK", "data": [data] if as_list else data}

    def find(
        self,
        *,
        quirk: Quirk | None = None,
        status: int | None = None,
        lacking: Iterable[Quirk] = (),
    ) -> str:
        """Return the first ID, in :meth:`ids` order, that shows ``quirk``, has ``status``
        at ``now`` and shows none of ``lacking`` (``None`` asks for any).

        Raises:
            LookupError: No instance in the window matches.
        """
        unwanted = frozenset(lacking)
        for instance_id in self.ids():
            found = self._observe(instance_id)
            if found is None:
                continue
            plan, seen = found
            if (
                (quirk is None or quirk in plan.quirks)
                and (status is None or seen.status == status)
                and not plan.quirks & unwanted
            ):
                return instance_id
        raise LookupError(f"no instance with quirk={quirk!r} status={status!r}")

    def to_epoch_ms(self, moment: datetime) -> int:
        """Return epoch milliseconds of a wall-clock time in the population's zone."""
        return (moment.replace(tzinfo=self.zone) - _EPOCH) // timedelta(milliseconds=1)

    def from_epoch_ms(self, epoch_ms: int) -> datetime:
        """Return the wall-clock time in the population's zone of epoch milliseconds."""
        aware = _EPOCH + timedelta(milliseconds=epoch_ms)
        return aware.astimezone(self.zone).replace(tzinfo=None)

    def search_ids(
        self,
        from_ms: int,
        to_ms: int,
        status_codes: set[int] | frozenset[int] | None = None,
        *,
        expression: str = "",
        owner: str = "",
        type: int = PERIODIC,
    ) -> Iterator[str]:
        """Yield the IDs List Flow Instances matches, by trigger time then flow ID.

        Trigger time in ``[from_ms, to_ms]``, both ends included (the documentation
        says only "between", so the simulator takes the reading that tests clients
        hardest: a time on the boundary of two windows is in both); ``status_codes``
        empty or None for all; ``expression`` a case-insensitive substring of the
        instance ID or flow name; ``owner`` one of the flow's owners, empty for all;
        ``type`` the flows' :func:`flow_type`.
        """
        start = max(self.start, self.from_epoch_ms(from_ms))
        stop = min(self._stop(), self.from_epoch_ms(to_ms + 1))
        needle = expression.casefold()
        flows = [
            f
            for f in self.flows()
            if (not owner or owner in f.owners) and flow_type(f.flow_id) == type
        ]
        named = {f.flow_id for f in flows if needle in f.name.casefold()}
        for instance_id in self._fires(start, stop, flows):
            flow_id = int(instance_id.partition("-")[0])
            if needle and needle not in instance_id and flow_id not in named:
                continue
            if status_codes and self.status(instance_id) not in status_codes:
                continue
            yield instance_id

    def timezone_label(self) -> str:
        """Return the zone's standard offset as Get Time Zone writes it, e.g. ``GMT+8``."""
        probe = datetime(self.start.year, 1, 1, tzinfo=self.zone)
        offset = (probe.utcoffset() or timedelta()) - (probe.dst() or timedelta())
        minutes = round(offset / timedelta(minutes=1))
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        return f"GMT{sign}{hours}:{rest:02d}" if rest else f"GMT{sign}{hours}"
