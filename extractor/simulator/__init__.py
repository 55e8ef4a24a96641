"""A local EnOS-compatible gateway for demos, end-to-end tests and benchmarks.

:class:`Population` is the data: flows with Quartz schedules and their instances,
derived from a seed, with the documented payload inconsistencies spread over them.
:class:`Simulator` serves it over HTTP on loopback with APIM token and signature
checks, and :class:`Faults` makes it misbehave on purpose.

>>> from datetime import datetime
>>> population = Population(flows=12, start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
>>> first = next(population.ids())
>>> population.instance(first)["instanceId"] == first
True
"""

from extractor.simulator.faults import FaultKind, Faults, PermanentFault, RetryAfterForm
from extractor.simulator.flows import FlowSpec, TaskSpec
from extractor.simulator.lifecycle import DEFAULT_QUIRK_RATES, QUIRKS, Quirk
from extractor.simulator.population import Population
from extractor.simulator.process import SimulatorProcess, build_simulator, describe_simulator
from extractor.simulator.schedules import FireTimes
from extractor.simulator.server import INSTANCES_PATH, TIME_PATH, TOKEN_PATH, Simulator
from extractor.simulator.stats import SimStats
from extractor.simulator.tokens import SimCredentials

__all__ = [
    "DEFAULT_QUIRK_RATES",
    "INSTANCES_PATH",
    "QUIRKS",
    "TIME_PATH",
    "TOKEN_PATH",
    "FaultKind",
    "Faults",
    "FireTimes",
    "FlowSpec",
    "PermanentFault",
    "Population",
    "Quirk",
    "RetryAfterForm",
    "SimCredentials",
    "SimStats",
    "Simulator",
    "SimulatorProcess",
    "TaskSpec",
    "build_simulator",
    "describe_simulator",
]
