"""The DRPC server's bookkeeping (Storm's DRPCTest): ids, queues, results, timeouts, shutdown."""

from __future__ import annotations

from typing import Any

import pytest

from squall.drpc import DRPCErrorType, DRPCExecutionError, DRPCService
from squall.drpc.conf import server_addresses, tokens
from squall.drpc.errors import HTTP_STATUS
from squall.drpc.service import NO_REQUEST
from squall.runtime.clock import SimulatedClock

pytestmark = pytest.mark.timeout(10)


class Outcomes:
    """Collects on_done calls per request id."""

    def __init__(self) -> None:
        self.by_args: dict[str, tuple[str | None, DRPCExecutionError | None]] = {}

    def callback(self, args: str) -> Any:
        def done(result: str | None, error: DRPCExecutionError | None) -> None:
            assert args not in self.by_args, "on_done called twice"
            self.by_args[args] = (result, error)

        return done


def service(**kw: Any) -> tuple[DRPCService, SimulatedClock]:
    clock = SimulatedClock()
    return DRPCService(clock=clock, first_id=1, **kw), clock


def test_request_ids_are_decimal_counter_strings_in_submission_order() -> None:
    svc, _ = service()
    ids = [svc.submit("f", str(i), lambda r, e: None) for i in range(3)]
    assert ids == ["1", "2", "3"]


def test_default_ids_do_not_repeat_across_server_restarts() -> None:
    first = DRPCService().submit("f", "", lambda r, e: None)
    second = DRPCService().submit("f", "", lambda r, e: None)
    assert int(second) > int(first) > 1_000_000


def test_a_fetched_request_completes_with_the_returned_result() -> None:
    svc, _ = service()
    out = Outcomes()
    rid = svc.submit("exclaim", "aaa", out.callback("aaa"))
    req = svc.fetch_request("exclaim")
    assert (req.func_args, req.request_id) == ("aaa", rid)
    assert svc.result(rid, "aaa!!!")
    assert out.by_args == {"aaa": ("aaa!!!", None)}
    assert svc.pending() == 0


def test_fetch_returns_storms_empty_sentinel_when_nothing_is_queued() -> None:
    svc, _ = service()
    assert svc.fetch_request("nobody") == NO_REQUEST
    assert NO_REQUEST.request_id == ""


def test_requests_are_fetched_oldest_first_and_per_function() -> None:
    svc, _ = service()
    for a in ("a1", "a2"):
        svc.submit("a", a, lambda r, e: None)
    svc.submit("b", "b1", lambda r, e: None)
    assert [r.func_args for r in svc.fetch_requests("a", 10)] == ["a1", "a2"]
    assert [r.func_args for r in svc.fetch_requests("b", 10)] == ["b1"]
    assert svc.fetch_requests("a", 10) == []


def test_fetch_requests_takes_at_most_max_requests() -> None:
    svc, _ = service()
    for i in range(5):
        svc.submit("f", str(i), lambda r, e: None)
    assert len(svc.fetch_requests("f", 2)) == 2
    assert svc.queued("f") == 3


def test_a_failed_request_reports_failed_request() -> None:
    svc, _ = service()
    out = Outcomes()
    rid = svc.submit("f", "x", out.callback("x"))
    svc.fetch_request("f")
    assert svc.fail_request(rid)
    result, error = out.by_args["x"]
    assert result is None and error is not None
    assert error.type is DRPCErrorType.FAILED_REQUEST and error.status == 400


def test_results_and_fails_for_unknown_ids_are_ignored() -> None:
    svc, _ = service()
    assert svc.result("12345", "late") is False
    assert svc.fail_request("12345") is False


def test_a_request_is_completed_only_once() -> None:
    svc, _ = service()
    out = Outcomes()
    rid = svc.submit("f", "x", out.callback("x"))
    svc.fetch_request("f")
    assert svc.result(rid, "first")
    assert not svc.fail_request(rid)
    assert not svc.result(rid, "second")
    assert out.by_args["x"] == ("first", None)


def test_a_request_nobody_fetches_times_out_and_leaves_the_queue() -> None:
    svc, clock = service(timeout_secs=10)
    out = Outcomes()
    svc.submit("nobody", "x", out.callback("x"))
    clock.advance(9.9)
    assert svc.reap() == 0
    clock.advance(0.2)
    assert svc.reap() == 1
    _, error = out.by_args["x"]
    assert error is not None and error.type is DRPCErrorType.SERVER_TIMEOUT and error.status == 504
    assert "to be fetched" in error.message and "nobody" in error.message
    assert svc.queued("nobody") == 0
    assert svc.fetch_request("nobody") == NO_REQUEST
    assert svc.metrics["drpc:num-server-timedout-requests"] == 1


def test_a_fetched_request_without_a_result_times_out() -> None:
    svc, clock = service(timeout_secs=10)
    out = Outcomes()
    svc.submit("f", "x", out.callback("x"))
    svc.fetch_request("f")
    clock.advance(10)
    svc.reap()
    _, error = out.by_args["x"]
    assert error is not None and "for a result" in error.message


def test_reaping_expires_only_requests_past_their_deadline() -> None:
    svc, clock = service(timeout_secs=10)
    out = Outcomes()
    svc.submit("f", "old", out.callback("old"))
    clock.advance(5)
    svc.submit("f", "new", out.callback("new"))
    clock.advance(5)
    assert svc.reap() == 1
    assert set(out.by_args) == {"old"}
    assert [r.func_args for r in svc.fetch_requests("f", 10)] == ["new"]
    assert svc.next_deadline() == 15


def test_a_full_queue_refuses_requests_with_a_clear_error() -> None:
    svc, _ = service(queue_size=2)
    svc.submit("f", "1", lambda r, e: None)
    svc.submit("f", "2", lambda r, e: None)
    with pytest.raises(DRPCExecutionError) as info:
        svc.submit("f", "3", lambda r, e: None)
    assert info.value.type is DRPCErrorType.QUEUE_FULL and info.value.status == 503
    assert "'f'" in info.value.message and "drpc.queue.size" in info.value.message
    # Other functions have their own queue; a fetch makes room.
    svc.submit("g", "1", lambda r, e: None)
    svc.fetch_request("f")
    svc.submit("f", "3", lambda r, e: None)


def test_fetched_requests_do_not_count_against_the_queue() -> None:
    svc, _ = service(queue_size=1)
    for i in range(5):
        svc.submit("f", str(i), lambda r, e: None)
        svc.fetch_request("f")
    assert svc.pending() == 5


def test_closing_fails_every_pending_request_with_server_shutdown() -> None:
    svc, _ = service()
    out = Outcomes()
    svc.submit("f", "queued", out.callback("queued"))
    svc.submit("f", "fetched", out.callback("fetched"))
    svc.fetch_request("f")
    svc.close()
    for args in ("queued", "fetched"):
        _, error = out.by_args[args]
        assert error is not None and error.type is DRPCErrorType.SERVER_SHUTDOWN
        assert error.status == 503 and error.message == "Server Shutting Down"
    with pytest.raises(DRPCExecutionError) as info:
        svc.submit("f", "late", lambda r, e: None)
    assert info.value.type is DRPCErrorType.SERVER_SHUTDOWN


def test_execute_async_returns_a_future_for_the_result() -> None:
    svc, _ = service()
    fut = svc.execute_async("f", "x")
    req = svc.fetch_request("f")
    svc.result(req.request_id, "y")
    assert fut.result(0) == "y"


def test_execute_async_sets_refusals_on_the_future() -> None:
    svc, _ = service(queue_size=1)
    svc.execute_async("f", "1")
    fut = svc.execute_async("f", "2")
    with pytest.raises(DRPCExecutionError, match="queue full"):
        fut.result(0)


def test_a_watch_fires_once_when_a_request_for_its_function_arrives() -> None:
    svc, _ = service()
    fired: list[str] = []
    svc.watch("f", lambda: fired.append("f"))
    svc.submit("g", "", lambda r, e: None)
    assert fired == []
    svc.submit("f", "", lambda r, e: None)
    svc.submit("f", "", lambda r, e: None)
    assert fired == ["f"]
    # Something is already queued: a new watch fires at once.
    svc.watch("f", lambda: fired.append("again"))
    assert fired == ["f", "again"]


def test_a_cancelled_watch_never_fires_and_close_wakes_watchers() -> None:
    svc, _ = service()
    fired: list[str] = []
    cancel = svc.watch("f", lambda: fired.append("cancelled"))
    cancel()
    svc.watch("g", lambda: fired.append("closed"))
    svc.submit("f", "", lambda r, e: None)
    svc.close()
    assert fired == ["closed"]


def test_a_callback_that_raises_does_not_break_the_completing_thread() -> None:
    svc, _ = service()

    def boom(result: str | None, error: DRPCExecutionError | None) -> None:
        raise RuntimeError("client went away")

    rid = svc.submit("f", "", boom)
    svc.fetch_request("f")
    assert svc.result(rid, "x")


def test_args_and_function_must_be_strings() -> None:
    svc, _ = service()
    with pytest.raises(TypeError, match="function"):
        svc.submit("", "x", lambda r, e: None)
    with pytest.raises(TypeError, match="args for 'f'"):
        svc.submit("f", 12, lambda r, e: None)  # type: ignore[arg-type]


def test_error_types_map_to_storms_http_statuses() -> None:
    assert {t.value: s for t, s in HTTP_STATUS.items()} == {
        "FAILED_REQUEST": 400,
        "SERVER_SHUTDOWN": 503,
        "QUEUE_FULL": 503,
        "SERVER_TIMEOUT": 504,
        "INTERNAL_ERROR": 500,
    }
    e = DRPCExecutionError("Timed Out", DRPCErrorType.SERVER_TIMEOUT)
    assert e.error_body() == {"error": "SERVER_TIMEOUT", "errorMessage": "Timed Out"}


def test_server_entries_default_to_the_http_port() -> None:
    conf = {"drpc.servers": ["a", "b:1", "[::1]:2"], "drpc.http.port": 9}
    assert server_addresses(conf) == [("a", 9), ("b", 1), ("::1", 2)]
    assert server_addresses({}) == []
    with pytest.raises(ValueError, match="bad port"):
        server_addresses({"drpc.servers": ["a:b"]})


def test_the_invocations_token_defaults_to_the_client_token() -> None:
    assert tokens({"drpc.auth.token": "t"}) == ("t", "t")
    assert tokens({"drpc.auth.token": "t", "drpc.invocations.token": "i"}) == ("t", "i")
    assert tokens({}) == (None, None)
