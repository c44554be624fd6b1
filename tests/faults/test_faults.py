"""The fault-injection matrix (issue 8): one fault per run against real processes on
private PostgreSQL, Redis and Tansu; tests/faults/runner.py has the timeline, and
tests/faults/checker.py what is counted. `make faults` runs it and prints the table."""
from __future__ import annotations

import pytest

from tests.faults.runner import FAULTS, run_fault

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.timeout(300)]


def _params() -> list:
    return [
        pytest.param(
            fault,
            id=fault.name,
            marks=[pytest.mark.xfail(reason=fault.known_failure, strict=False)] if fault.known_failure else [],
        )
        for fault in FAULTS
    ]


@pytest.mark.parametrize("fault", _params())
async def test_fault(fault, fault_services, fault_results, fault_logdir):
    result = await run_fault(fault, fault_services, fault_logdir)
    fault_results.append(result)
    problems = result.failures()
    assert not problems, f"{fault.name}: " + "; ".join(problems) + f" (logs: {result.logdir})"
