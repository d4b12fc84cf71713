"""Both sandbox CRMs through the kit's one interface: lifecycle, faults on the wire, request log, stats.

Every test runs against the HubSpot portal and the Salesforce org alike, with
plain HTTP requests (what the SDKs rely on), so the two emulators are held to
the same contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from pydantic import TypeAdapter

from connector.config import Connection
from connector.sandbox.hubspot import HubSpotSandbox
from connector.sandbox.kit import Emulator, Fault, Faults, LoopbackSandbox
from connector.sandbox.salesforce import SalesforceSandbox

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
API = "/services/data/v62.0"


@dataclass
class Vendor:
    """How to reach one emulator with plain requests."""

    sandbox: LoopbackSandbox
    http: requests.Session
    probe: tuple[str, str, str]
    """(method, path, request-log endpoint) of a cheap read."""
    write: str
    """Request-log endpoint of the batch write."""

    def call(self, method: str, path: str, **options: Any) -> requests.Response:
        options.setdefault("timeout", 10)
        return self.http.request(method, self.sandbox.url + path, **options)

    def read(self, **options: Any) -> requests.Response:
        method, path, _ = self.probe
        return self.call(method, path, **options)

    def ids(self) -> list[str]:
        if isinstance(self.sandbox, HubSpotSandbox):
            return ["1", "2", "3"]
        assert isinstance(self.sandbox, SalesforceSandbox)
        return [record["Id"] for record in self.sandbox.org.records("Contact")][:3]

    def write_stages(self, ids: list[str]) -> dict[str, bool]:
        """Set the stage field of ``ids`` in one batch; which ones the CRM accepted."""
        if isinstance(self.sandbox, HubSpotSandbox):
            inputs = [{"id": i, "properties": {"crmsync_lifecycle_stage": "lead"}} for i in ids]
            answer = self.call("POST", "/crm/v3/objects/contacts/batch/update", json={"inputs": inputs}).json()
            rejected = {i for error in answer.get("errors", []) for i in error["context"]["ids"]}
            return {i: i not in rejected for i in ids}
        records = [{"attributes": {"type": "Contact"}, "id": i, "Lifecycle_Stage__c": "Lead"} for i in ids]
        answer = self.call("PATCH", f"{API}/composite/sobjects", json={"allOrNone": False, "records": records})
        return {r["id"]: r["success"] for r in answer.json()}


def hubspot() -> Vendor:
    sandbox = HubSpotSandbox(contacts=20, activities=40, now=NOW, token="t0k3n")
    sandbox.start()
    http = requests.Session()
    http.trust_env = False
    http.headers["Authorization"] = "Bearer t0k3n"
    return Vendor(sandbox, http, ("GET", "/crm/v3/objects/contacts?limit=1", "contacts.list"), "contacts.batch_update")


def salesforce() -> Vendor:
    sandbox = SalesforceSandbox(contacts=20, activities=40, now=NOW)
    sandbox.start()
    http = requests.Session()
    http.trust_env = False
    http.verify = sandbox.ca_file
    form = {"grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    token = http.post(f"{sandbox.url}/services/oauth2/token", data=form, timeout=10).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    sandbox.request_log.clear()
    return Vendor(sandbox, http, ("GET", f"{API}/limits", "limits"), "composite/sobjects")


@pytest.fixture(params=["hubspot", "salesforce"])
def vendor(request: pytest.FixtureRequest) -> Iterator[Vendor]:
    made = hubspot() if request.param == "hubspot" else salesforce()
    yield made
    made.http.close()
    made.sandbox.stop()


def test_both_implement_the_one_interface(vendor: Vendor) -> None:
    sandbox = vendor.sandbox
    assert isinstance(sandbox, Emulator)
    assert sandbox.url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")) and sandbox.port > 0
    assert vendor.read().status_code == 200
    assert sandbox.request_log is sandbox.log and sandbox.request_log.calls(vendor.probe[2], 200) == 1
    connection = TypeAdapter(Connection).validate_python(sandbox.connection_settings(timeout_seconds=3.0))
    assert connection.timeout_seconds == 3.0
    assert sandbox.secrets_env() and all(sandbox.secrets_env().values())


def test_same_constructor_arguments() -> None:
    common = {"contacts": 3, "activities": 6, "seed": 4, "now": NOW, "host": "127.0.0.1", "port": 0,
              "keep_log_entries": False, "faults": None, "limits": None, "clock": lambda: NOW}  # fmt: skip
    for kind in (HubSpotSandbox, SalesforceSandbox):
        made = kind(**common)
        assert made.faults.seed == 4 and not made.request_log.keep_entries


def test_start_on_a_free_port_stop_and_serve_again(vendor: Vendor) -> None:
    sandbox = vendor.sandbox
    other = type(sandbox)()
    with other:
        assert other.port != sandbox.port and other.running
    assert not other.running
    port = sandbox.port
    sandbox.stop()
    sandbox.stop()  # idempotent
    with pytest.raises(OSError):  # refused (Salesforce: its CA file is gone with it)
        vendor.read()
    vendor.http.close()  # drop the kept-alive connection to the stopped server
    sandbox.start()
    assert sandbox.port == port and vendor.read().status_code == 200


@pytest.mark.parametrize(
    ("fault", "header"),
    [
        (Fault("rate_limit", retry_after=2), "2"),
        (Fault("rate_limit"), None),
        (Fault("rate_limit", retry_after=3, retry_after_date=True), "date"),
    ],
    ids=["retry-after-seconds", "no-retry-after", "retry-after-http-date"],
)
def test_rate_limit_faults_with_and_without_retry_after(vendor: Vendor, fault: Fault, header: str | None) -> None:
    vendor.sandbox.faults.add(fault)
    before = datetime.now(UTC).replace(microsecond=0)
    answer = vendor.read()
    assert answer.status_code == 429
    if header == "date":
        announced = parsedate_to_datetime(answer.headers["Retry-After"])
        assert announced.tzinfo is not None and (announced - before).total_seconds() >= 3
    else:
        assert answer.headers.get("Retry-After") == header
    assert vendor.read().status_code == 200  # times=1: only the next request
    [hit, after] = vendor.sandbox.request_log.entries
    assert (hit.status, hit.fault, after.status, after.fault) == (429, "rate_limit", 200, None)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(vendor: Vendor, status: int) -> None:
    vendor.sandbox.faults.add(Fault("server_error", status=status, endpoint=vendor.probe[2]))
    assert vendor.read().status_code == status
    assert vendor.sandbox.request_log.calls(vendor.probe[2], status) == 1


def test_reset_drops_the_connection(vendor: Vendor) -> None:
    vendor.sandbox.faults.add(Fault("reset"))
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        vendor.read()
    assert vendor.sandbox.request_log.calls(vendor.probe[2], 0) == 1
    assert vendor.read().status_code == 200


def test_slow_answer_runs_past_a_client_timeout(vendor: Vendor) -> None:
    vendor.sandbox.faults.add(Fault("slow", delay=1.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        vendor.read(timeout=0.2)
    assert vendor.sandbox.faults.pending == 0


def test_faults_aim_at_one_endpoint(vendor: Vendor) -> None:
    vendor.sandbox.faults.add(Fault("server_error", endpoint=vendor.write, times=None))
    assert vendor.read().status_code == 200
    assert vendor.sandbox.faults.hits() == 0


def test_partial_batch_failure_rejects_the_chosen_records_and_writes_the_rest(vendor: Vendor) -> None:
    ids = vendor.ids()
    vendor.sandbox.faults.add(
        Fault("partial", endpoint=vendor.write, reject_ids=(ids[1],), category="VALIDATION_ERROR")
    )
    assert vendor.write_stages(ids) == {ids[0]: True, ids[1]: False, ids[2]: True}
    assert vendor.write_stages(ids) == dict.fromkeys(ids, True)
    [first, _] = [e for e in vendor.sandbox.request_log.entries if e.endpoint == vendor.write]
    assert first.fault == "partial"


def test_record_faults_fail_writes_to_one_record_whatever_the_request(vendor: Vendor) -> None:
    ids = vendor.ids()
    vendor.sandbox.faults.lock_rows([ids[0]], times=2)
    assert vendor.write_stages(ids[:2]) == {ids[0]: False, ids[1]: True}
    assert vendor.write_stages(ids[:1]) == {ids[0]: False}
    assert vendor.write_stages(ids[:1]) == {ids[0]: True}


def test_stats_count_requests_usage_and_records(vendor: Vendor) -> None:
    vendor.sandbox.faults.add(Fault("server_error", status=500))
    vendor.read()
    vendor.read()
    stats = vendor.sandbox.stats()
    assert stats["requests"]["counts"] == {vendor.probe[2]: 2}
    assert stats["requests"]["statuses"] == {"500": 1, "200": 1}
    assert stats["api_usage"]["used"] >= 1
    assert sum(stats["records"].values()) > 20


def test_admin_endpoint_serves_the_same_stats(vendor: Vendor) -> None:
    vendor.read()
    answer = vendor.call("GET", "/_sandbox/stats").json()
    assert answer["requests"]["counts"][vendor.probe[2]] == 1
    armed = vendor.call("POST", "/_sandbox/faults", json={"kind": "503", "times": 2}).json()
    assert armed == {"pending": 2}
    assert vendor.read().status_code == 503


def test_probabilistic_faults_fire_as_seeded(vendor: Vendor) -> None:
    endpoint = vendor.probe[2]
    expected = Faults(seed=11)
    expected.add(Fault("server_error", times=None, probability=0.3))
    predicted = [503 if expected.take(endpoint) else 200 for _ in range(30)]
    vendor.sandbox.faults.seed = 11
    vendor.sandbox.faults.add(Fault("server_error", times=None, probability=0.3))
    assert [vendor.read().status_code for _ in range(30)] == predicted
    assert 3 <= predicted.count(503) <= 20
