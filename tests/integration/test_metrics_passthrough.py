"""vLLM's own metrics pass through /metrics with endpoint, version and replica labels."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from regolo.server.metrics.passthrough import ScrapeTarget, scrape
from regolo.server.metrics.prometheus import _Snapshot
from tests.support.live import free_port

pytestmark = pytest.mark.timeout(60)

VLLM_PAGE = """\
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 3.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{model_name="m"} 1234.0
# HELP process_cpu_seconds_total Total user and system CPU time.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 9.5
"""


@pytest.fixture
def vllm_replica() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != "Bearer replica-token":
                self.send_response(401)
                self.end_headers()
                return
            body = VLLM_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_vllm_metrics_pass_through_relabelled(vllm_replica: str) -> None:
    targets = [
        ScrapeTarget("acc", "chat-api", "1.1", "rep_1", vllm_replica, "replica-token"),
        ScrapeTarget("acc", "chat-api", "1.0", "rep_2", f"http://127.0.0.1:{free_port()}", "t"),
        ScrapeTarget("acc", "chat-api", "1.0", "rep_3", vllm_replica, "wrong-token"),
    ]
    families = scrape(targets)
    assert sorted(f.name for f in families) == [
        "vllm:generation_tokens",
        "vllm:num_requests_running",
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    page = generate_latest(registry).decode()
    parsed = {f.name: f for f in text_string_to_metric_families(page)}
    (running,) = parsed["vllm:num_requests_running"].samples
    assert running.value == 3.0
    assert running.labels == {
        "model_name": "m", "account": "acc", "endpoint": "chat-api", "version": "1.1",
        "replica": "rep_1",
    }  # fmt: skip
    assert "process_cpu_seconds" not in page  # only the runtime's own vllm:* families
