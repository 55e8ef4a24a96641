"""A loopback HTTP server that answers like the EnOS API gateway.

Standard library only: a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, one
daemon thread per connection (see :mod:`extractor.simulator.wire`). This module holds
the gateway's behaviour: routing, authentication, the three calls, and faults.
"""

from __future__ import annotations

import functools
import random
import threading
from datetime import datetime
from http import HTTPStatus
from typing import Self

import orjson

from extractor.simulator.faults import Faults, FaultState, TokenBucket, retry_after_header
from extractor.simulator.population import Population
from extractor.simulator.search import SearchCursors, parse_search
from extractor.simulator.stats import SimStats, StatsCounter
from extractor.simulator.tokens import Rejection, SimCredentials, TokenService
from extractor.simulator.wire import Exchange, Server

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
SERVICE_PATH = "batch-processing-service/v2.1"
"""The service's path on current platforms; older ones serve ``dataflow-batch-service/v2.0``."""
INSTANCES_PATH = f"/{SERVICE_PATH}/flowInstances"
TIME_PATH = f"/{SERVICE_PATH}/time"

_PAYLOAD_CACHE_SIZE = 4096
_PERMANENT_ANSWERS = {
    "no_privilege": {"code": 62103, "msg": "No privilege to read this flow instance."},
    "not_found": {"code": 0, "msg": "OK", "data": None},
}
_POLL_S = 0.05
"""How often the accept loop looks for a stop request; bounds how long stop() waits."""

_Answer = tuple[int, object, str]
"""A JSON answer: its HTTP status, its body, and the kind the stats count it as."""


class Simulator:
    """A local EnOS gateway: APIM tokens, Get/List Flow Instances and Get Time Zone.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with Simulator(Population(flows=20)) as sim:
            run_extract(base_url=sim.url, ...)
            sim.faults = Faults(throttle=0.1)  # from now on
            print(sim.stats.throttled)

    Args:
        population: The flows and instances served (default ``Population()``).
        faults: What goes wrong (default: nothing); replaceable while running.
        port: Port to bind; 0 picks a free one (see :attr:`url`).
        service_path: The service's path, e.g. ``dataflow-batch-service/v2.0`` on older
            platforms.
    """

    def __init__(
        self,
        population: Population | None = None,
        *,
        credentials: SimCredentials = SimCredentials(),  # noqa: B008 - frozen, shared safely
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl_s: float = 7200,
        service_path: str = SERVICE_PATH,
    ) -> None:
        self.population = population if population is not None else Population()
        self.service_path = service_path.strip("/")
        self._routes = {
            TOKEN_PATH: "token",
            f"/{self.service_path}/flowInstances": "instances",
            f"/{self.service_path}/time": "time",
        }
        self.credentials = credentials
        self.host, self.port = host, port
        self.tokens = TokenService(credentials, token_ttl_s)
        self._stats = StatsCounter()
        self._cursors = SearchCursors()
        self._bodies = functools.lru_cache(maxsize=_PAYLOAD_CACHE_SIZE)(self._body)
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.faults = faults or Faults()

    @property
    def faults(self) -> Faults:
        """The fault plan in force; assigning one starts it afresh."""
        return self._fault_state.faults

    @faults.setter
    def faults(self, plan: Faults) -> None:
        self._fault_state = FaultState(plan)
        self._bucket = TokenBucket(plan.rate_limit_rps) if plan.rate_limit_rps else None
        self._rng = random.Random(plan.seed)

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://{self._server.server_name}:{self._server.server_port}"

    @property
    def stats(self) -> SimStats:
        """A snapshot of the request, answer and fault counters."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._stats.reset()

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired."""
        self.tokens.expire_all()

    def start(self) -> Self:
        """Bind and serve in a background thread; return self."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        server = self._server = Server((self.host, self.port), self.handle)
        self._thread = threading.Thread(
            target=server.serve_forever, args=(_POLL_S,), name="enos-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handle(self, exchange: Exchange) -> None:
        """Answer one request; the server calls this from the connection's thread."""
        route = self._routes.get(exchange.path, "unknown")
        if route == "instances":
            route = "search" if exchange.method == "POST" else "get"
        self._stats.add("requests", route)
        answer = self._route(exchange, route)
        if answer is not None:
            status, body, kind = answer
            self._stats.add("answers", kind)
            exchange.reply_json(status, body)

    def _route(self, exchange: Exchange, route: str) -> _Answer | None:
        """Return the JSON answer to a request, or None when it was answered otherwise."""
        if route == "unknown":
            return 404, {"code": 404, "msg": f"no such path: {exchange.path}"}, "unknown_path"
        if exchange.method not in ("GET", "POST"):
            body = {"code": 405, "msg": f"{exchange.method} is not allowed here"}
            return 405, body, "bad_request"
        self._delay()
        if route == "token":
            return self._token(exchange)
        if self._bucket is not None and (wait := self._bucket.take()) > 0:
            self._stats.add("faults", "rate_limit")
            self._stats.add("answers", "rate_limited")
            retry = {"Retry-After": str(max(1, round(wait + 0.5)))}
            body = {"code": 429, "msg": "Too many requests: rate limit exceeded"}
            exchange.reply_json(429, body, retry)
            return None
        if self._fault_state.count_call():
            self._stats.add("faults", "token_expiry")
            self.tokens.expire_all()
        refused = self.tokens.check(exchange.headers, exchange.query, exchange.body)
        if refused is not None:
            kind = "token_expired" if refused.code == 1203 else "auth_error"
            return 401, {"code": refused.code, "msg": refused.message}, kind
        if route == "get":
            return self._get(exchange)
        return self._search(exchange) if route == "search" else self._time(exchange)

    def _delay(self) -> None:
        plan = self.faults
        if plan.latency_ms or plan.latency_jitter_ms:
            extra = self._rng.uniform(0, plan.latency_jitter_ms)
            self._stopping.wait((plan.latency_ms + extra) / 1000)

    def _token(self, exchange: Exchange) -> _Answer:
        if exchange.method != "POST":
            return 405, {"code": 405, "msg": "use POST"}, "bad_request"
        try:
            request = orjson.loads(exchange.body)
        except orjson.JSONDecodeError:
            request = None
        issued = self.tokens.issue(request)
        business = "apim-token-service"
        if isinstance(issued, Rejection):
            return (
                200,
                {"status": issued.code, "msg": issued.message, "business": business},
                "token_error",
            )
        data = {"accessToken": issued[0], "expire": issued[1]}
        return 200, {"status": 0, "msg": "SUCCESS", "business": business, "data": data}, "token"

    def _check_user(self, exchange: Exchange, action: str) -> _Answer | None:
        """Return the answer to a wrong action, user or org; None when the request may go on."""
        params = exchange.params
        if params.get("action") != action:
            return 400, {"code": 62102, "msg": f"action must be {action!r} here"}, "bad_request"
        if not params.get("userId") or not params.get("orgId"):
            return 400, {"code": 62102, "msg": "userId and orgId are required"}, "bad_request"
        creds = self.credentials
        if (params["userId"], params["orgId"]) != (creds.user_id, creds.org_id):
            message = "userId does not exist, or it does not match to orgId."
            return 200, {"code": 62101, "msg": message}, "user_mismatch"
        return None

    def _get(self, exchange: Exchange) -> _Answer | None:
        if (refused := self._check_user(exchange, "get")) is not None:
            return refused
        instance_id = exchange.params.get("flowInstId", "")
        if not instance_id:
            return 400, {"code": 62102, "msg": "flowInstId is required"}, "bad_request"
        permanent = self.faults.permanent.get(instance_id)
        if permanent is not None:
            return 200, _PERMANENT_ANSWERS[permanent], permanent
        fault = self._fault_state.decide(instance_id)
        if fault is not None:
            self._stats.add("faults", fault)
            self._inject(exchange, fault, instance_id)
        else:
            payload, found = self._payload(instance_id)
            self._stats.add("answers", "ok" if found else "not_found")
            exchange.reply(200, payload)
        return None

    def _payload(self, instance_id: str) -> tuple[bytes, bool]:
        """Return the Get Flow Instance body, and whether it has the instance."""
        population = self.population
        return self._bodies(instance_id, population.now, population.start)

    def _body(self, instance_id: str, now: datetime, start: datetime) -> tuple[bytes, bool]:
        # ``now`` and ``start`` only key the cache: the body changes with them.
        envelope = self.population.envelope(instance_id)
        return orjson.dumps(envelope), bool(envelope["data"])

    def _inject(self, exchange: Exchange, fault: str, instance_id: str) -> None:
        plan = self.faults
        self._stats.add("answers", fault)
        if fault == "throttle":
            value = retry_after_header(plan.retry_after, plan.retry_after_s)
            headers = {} if value is None else {"Retry-After": value}
            exchange.reply_json(429, {"code": 429, "msg": "Too many requests"}, headers)
        elif fault == "server_error":
            status = self._fault_state.server_error_status(instance_id)
            if status == 500:
                exchange.reply_json(500, {"code": 500, "msg": "Internal Server Error"})
            else:
                # Gateways in front of a failing service answer with their own plain text.
                body = HTTPStatus(status).phrase.encode()
                exchange.reply(status, body, content_type="text/plain;charset=UTF-8")
        elif fault == "timeout":
            self._stopping.wait(plan.hang_s)
            exchange.hang_up()
        elif fault == "drop":
            exchange.hang_up()
        elif fault == "malformed":
            body = self._payload(instance_id)[0]
            exchange.reply(200, body[: max(1, len(body) // 2)])
        else:
            exchange.reply_json(200, {"code": 62109, "msg": "Server internal exception"})

    def _search(self, exchange: Exchange) -> _Answer:
        if (refused := self._check_user(exchange, "search")) is not None:
            return refused
        request = parse_search(exchange.body)
        if isinstance(request, str):
            return 200, {"code": 62102, "msg": request}, "bad_request"
        ids = self._cursors.page(self.population, request)
        found = (self.population.instance(i, listed=True) for i in ids)
        records = [d for d in found if d is not None]
        data = {"flowInsts": records, "count": len(records)}
        return 200, {"code": 0, "msg": "OK", "data": data}, "ok"

    def _time(self, exchange: Exchange) -> _Answer:
        if exchange.params.get("action") != "getTimeZone":
            return 400, {"code": 62102, "msg": "action must be 'getTimeZone' here"}, "bad_request"
        data = {"timezone": self.population.timezone_label()}
        return 200, {"code": 0, "msg": "OK", "data": data}, "ok"
