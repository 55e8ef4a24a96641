"""Building a simulator from plain options, and running one in a child process.

Benchmarks run the simulator in its own process so that it does not share the client's
interpreter lock; :class:`SimulatorProcess` does that and keeps the simulator's
controls (faults, clock, token expiry, stats) reachable over a pipe.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, Self, cast

from extractor.simulator.faults import Faults
from extractor.simulator.population import Population
from extractor.simulator.server import Simulator
from extractor.simulator.stats import SimStats

_ROOT = str(Path(__file__).resolve().parents[2])
_CHILD = "from extractor.simulator.process import child_main; child_main()"
_POPULATION_OPTIONS = frozenset(inspect.signature(Population).parameters)


def describe_simulator(sim: Simulator) -> str:
    """What a user needs to extract from a running simulator: its URL, credentials,
    time zone and the trigger times its instances span, with a command that works."""
    population, creds = sim.population, sim.credentials
    first = population.start
    last = min(population.end, population.now)
    zone = population.zone.key
    example_end = min(first + timedelta(days=1), last)
    return "\n".join(
        [
            f"EnOS simulator on {sim.url} (Ctrl-C to stop)",
            f"  app key {creds.app_key}, app secret {creds.app_secret}, "
            f"org {creds.org_id}, user {creds.user_id}",
            f"  time zone {zone} (Get Time Zone answers {population.timezone_label()})",
            f"  {population.flow_count} flows; instances triggered from {first:%Y-%m-%dT%H:%M:%S}"
            f" to {last:%Y-%m-%dT%H:%M:%S} ({zone} wall clock)",
            "  extract a day of them:",
            f"    ENOS_GATEWAY={sim.url} ENOS_APP_KEY={creds.app_key} "
            f"ENOS_APP_SECRET={creds.app_secret} ENOS_ORG_ID={creds.org_id} "
            f"ENOS_USER_ID={creds.user_id} ENOS_TIMEZONE={zone} "
            f"ENOS_SERVICE_PATH={sim.service_path} \\",
            f"    enos-flows extract --from {first:%Y-%m-%dT%H:%M:%S} "
            f"--to {example_end:%Y-%m-%dT%H:%M:%S} --sqlite flows.sqlite",
        ]
    )


def build_simulator(**options: Any) -> Simulator:
    """Return a (not yet started) simulator built from plain keyword options: those of
    :class:`Population` build its population, the rest are :class:`Simulator`'s own.

    >>> sim = build_simulator(flows=3, port=8080)
    >>> sim.population.flow_count, sim.port
    (3, 8080)
    """
    chosen = {name: options.pop(name) for name in _POPULATION_OPTIONS & options.keys()}
    return Simulator(Population(**chosen), **options)


def _send(stream: IO[bytes], value: object) -> None:
    pickle.dump(value, stream)
    stream.flush()


def child_main() -> None:
    """Entry point of the child: options and commands on stdin, answers on stdout."""
    answers = os.fdopen(os.dup(1), "wb")
    # Anything printed by accident goes to stderr, not into the answer stream.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    commands = sys.stdin.buffer
    with build_simulator(**pickle.load(commands)) as simulator:
        _send(answers, simulator.url)
        while True:
            command, argument = pickle.load(commands)
            if command == "stop":
                _send(answers, None)
                return
            if command == "faults":
                simulator.faults = argument
            elif command == "advance":
                simulator.population.advance(argument)
            elif command == "expire_tokens":
                simulator.expire_tokens()
            elif command == "reset_stats":
                simulator.reset_stats()
            _send(answers, simulator.stats if command == "stats" else None)


class SimulatorProcess:
    """A simulator in a child process, started with the options of :func:`build_simulator`.

    The child is a fresh interpreter (``python -c``), so callers need no
    ``if __name__ == "__main__"`` guard. Its controls travel as pickles over its stdin
    and stdout.

    ::

        with SimulatorProcess(flows=50, faults=Faults(throttle=0.05)) as sim:
            run_benchmark(sim.url)
            print(sim.stats().total_requests)
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL of the child's server."""
        if self._url is None:
            raise RuntimeError("the simulator process is not running; call start() first")
        return self._url

    def start(self) -> Self:
        """Start the child and wait until it serves; return self."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_ROOT, env.get("PYTHONPATH"))))
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._process = process
        try:
            self._url = self._call_raw(self.options)
        except BaseException:
            self.stop()
            raise
        return self

    def _call_raw(self, message: object) -> Any:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the simulator process is not running")
        try:
            _send(process.stdin, message)
            return pickle.load(process.stdout)
        except (OSError, EOFError) as exc:
            raise RuntimeError("the simulator process exited") from exc

    def _call(self, command: str, argument: object = None) -> Any:
        return self._call_raw((command, argument))

    def set_faults(self, faults: Faults) -> None:
        """Replace the child's fault plan."""
        self._call("faults", faults)

    def advance(self, delta: timedelta) -> None:
        """Move the child population's clock forward."""
        self._call("advance", delta)

    def expire_tokens(self) -> None:
        """Expire every token the child issued."""
        self._call("expire_tokens")

    def stats(self) -> SimStats:
        """Return the child's counters."""
        return cast(SimStats, self._call("stats"))

    def reset_stats(self) -> None:
        """Zero the child's counters."""
        self._call("reset_stats")

    def stop(self) -> None:
        """Stop the child's server and wait for the child to exit."""
        process, self._process = self._process, None
        self._url = None
        if process is None:
            return
        with contextlib.suppress(OSError, EOFError, pickle.PickleError):
            if process.stdin is not None and process.stdout is not None and process.poll() is None:
                _send(process.stdin, ("stop", None))
                pickle.load(process.stdout)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
