"""A gateway in memory for the pipeline and sync tests: Get Flow Instance answers per
ID and List Flow Instances lists the records triggered in the window asked for, so an
:class:`EnOSClient` on it does its real work (signing, classification, retries) with no
network and no waiting."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from fakes import FakeTime, FakeTransport, Sent, ok

from extractor.config import FetchConfig, GatewayConfig
from extractor.errors import ApiError
from extractor.gateway._client import EnOSClient
from extractor.gateway._transport import Answer

INSTANCES = "/batch-processing-service/v2.1/flowInstances"
PERIODIC = 1
"""The instance type the records are listed under."""

Entry = Mapping[str, Any] | Answer | ApiError


def record(
    instance_id: str, *, status: int = 1, trigger: str = "2026-01-31 08:00:00"
) -> dict[str, Any]:
    """A flow instance record with one task, triggered at ``trigger`` (UTC)."""
    graph = {"tasks": [{"taskInstId": f"t-{instance_id}", "taskId": 7, "nodeId": "n-1"}]}
    return {
        "instanceId": instance_id,
        "flowId": 42,
        "flowName": "daily",
        "status": status,
        "triggerTime": trigger,
        "calDt": trigger[:10],
        "graph": graph,
    }


class Gateway(FakeTransport):
    """Answers Get Flow Instance from ``entries`` by ``flowInstId`` (an unknown ID is
    "not found": ``data`` null) and List Flow Instances with the periodic records whose
    trigger time falls in the asked window; anything else as :class:`FakeTransport`."""

    def __init__(self, *records: Mapping[str, Any]) -> None:
        super().__init__()
        self.entries: dict[str, Entry] = {str(r["instanceId"]): r for r in records}

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        request = Sent(method, url, dict(headers), body)
        action = request.params.get("action")
        if request.path != INSTANCES or action not in ("get", "search"):
            return super().send(method, url, headers, body)
        with self._lock:
            self.sent.append(request)
        if action == "search":
            return self._search(request.json())
        entry = self.entries.get(request.params["flowInstId"])
        if isinstance(entry, ApiError):
            raise copy.copy(entry)
        if isinstance(entry, Answer):
            return entry
        return ok(None if entry is None else dict(entry))

    def _search(self, query: Mapping[str, Any]) -> Answer:
        found = []
        if query["type"] == PERIODIC:
            low, high = query["fromTriggerTime"], query["toTriggerTime"]
            found = [
                dict(e)
                for e in self.entries.values()
                if isinstance(e, Mapping) and low <= _epoch_ms(e["triggerTime"]) <= high
            ]
        paging = query["pagination"]
        size = paging["pageSize"]
        page = found[(paging["pageNo"] - 1) * size : paging["pageNo"] * size]
        return ok({"flowInsts": page, "count": len(found)})

    def gets(self) -> list[str]:
        """The IDs asked for with Get Flow Instance, in order."""
        return [
            r.params["flowInstId"]
            for r in self.sent
            if r.path == INSTANCES and r.params.get("action") == "get"
        ]

    def searches(self) -> list[dict[str, Any]]:
        """The bodies of the List Flow Instances requests, in order."""
        return [
            r.json()
            for r in self.sent
            if r.path == INSTANCES and r.params.get("action") == "search"
        ]


def client_on(gateway: Gateway, *, timezone: tzinfo | None = UTC, **fetch: Any) -> EnOSClient:
    """A client on ``gateway`` whose naive times are in ``timezone`` (None: ask the
    gateway), on a clock that never waits."""
    fake_time = FakeTime()
    config = GatewayConfig(
        base_url="https://gateway.test",
        app_key="key-1",
        app_secret="secret-1",
        org_id="o1",
        user_id="u1",
        timezone=timezone,
    )
    return EnOSClient(
        config,
        transport=gateway,
        fetch=FetchConfig(**{"workers": 2, "max_attempts": 2, **fetch}),
        clock=fake_time.clock,
        wall_clock=fake_time.wall,
        sleep=fake_time.sleep,
    )


def _epoch_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)
