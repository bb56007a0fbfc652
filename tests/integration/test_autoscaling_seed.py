"""The seed's "Configure Autoscaling" sample runs as written and stores its exact numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.live import live_server
from tests.support.seed_models import SEED_MODEL, register_seed_model
from tests.support.serving_backend import ServingFakeBackend
from tests.support.snippets import run_snippet, snippets

pytestmark = pytest.mark.timeout(180)

SEED = Path(__file__).parents[2] / "docs" / "seed" / "custom-endpoints.md"


def test_the_seed_autoscaling_sample(tmp_path: Path) -> None:
    sample = next(s for s in snippets(SEED) if s.heading == "Configure Autoscaling")
    backend = ServingFakeBackend()
    try:
        with live_server(tmp_path, backend=backend) as server, server.client() as http:
            register_seed_model(http)
            created = http.post(
                "/v1/endpoints", json={"name": "sentiment-api", "model": SEED_MODEL, "replicas": 2}
            )
            assert created.status_code == 201, created.text
            ran = run_snippet(
                sample,
                api_key=server.admin_key,
                base_url=server.base_url,
                replacements={},
                epilogue="\nprint(regolo.get_autoscaling('sentiment-api').model_dump_json())",
            )
            assert ran.returncode == 0, ran.stderr
            policy = http.get("/v1/endpoints/sentiment-api/autoscaling").json()
    finally:
        backend.stop_all()
    assert policy["metrics"] == [
        {
            "metric": "cpu_usage",
            "target": 0.7,
            "scale_up_threshold": 0.8,
            "scale_down_threshold": 0.3,
        },
        {
            "metric": "request_rate",
            "target": 100,
            "scale_up_threshold": 150,
            "scale_down_threshold": 50,
        },
    ]
    assert (policy["min_replicas"], policy["max_replicas"]) == (2, 50)
    assert '"max_replicas":50' in ran.stdout
