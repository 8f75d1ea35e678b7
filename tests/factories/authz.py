"""The loop of a table-driven authorisation test: every endpoint case as every caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi.testclient import TestClient

PROBLEM_JSON = "application/problem+json"


def table_mismatches(
    client: TestClient,
    world: Any,
    cases: Mapping[str, Any],
    callers: Sequence[str],
    codes: Mapping[int, str],
    snapshot: Callable[[TestClient], object],
) -> list[str]:
    """Run each case (``expected`` per caller, ``success`` status, ``setup``, ``call``,
    optional ``check``) as each caller; return every way an answer differs from the
    table — wrong status or code, not problem+json, a refusal that wrote, a wrong body."""
    mismatches: list[str] = []
    for endpoint, case in cases.items():
        assert set(case.expected) == set(callers), endpoint
        for caller in callers:
            target = case.setup(world)
            before = snapshot(client)
            want = case.expected[caller] or case.success
            response = case.call(world, world.headers(caller), target)
            got: tuple[int, Any] = (response.status_code, None)
            if response.status_code >= 400:
                if response.headers["content-type"] != PROBLEM_JSON:
                    mismatches.append(f"{endpoint} as {caller}: not problem+json")
                    continue
                got = (response.status_code, response.json()["code"])
                if snapshot(client) != before:
                    mismatches.append(f"{endpoint} as {caller}: refused but wrote")
            if got != (want, codes.get(want)):
                mismatches.append(
                    f"{endpoint} as {caller}: want {want} {codes.get(want)}, got {got}"
                    + (f" {response.text[:200]}" if response.status_code >= 400 else "")
                )
            elif want < 400 and case.check and not case.check(world, caller, response):
                mismatches.append(f"{endpoint} as {caller}: wrong body {response.text[:300]}")
    return mismatches
