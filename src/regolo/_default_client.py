"""The module-level API of the seed (``regolo.create_endpoint(...)``) on a default client.

The default client is built on first use from ``REGOLO_API_KEY`` / ``REGOLO_BASE_URL``;
``regolo.configure`` replaces it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from regolo._autoscaling import AutoscalingEvent, AutoscalingPolicy
from regolo._batches import Batch, BatchResult
from regolo._billing import Balance, CostEstimate, Invoice, TopUp, Usage
from regolo._http import DEFAULT_TIMEOUT
from regolo._keys import ALL_MODELS_SCOPE
from regolo._metrics import EndpointHealth, EndpointMetrics, EndpointSlo
from regolo.client import RegoloClient
from regolo.types import (
    Canary,
    CreatedKey,
    Endpoint,
    InstanceFit,
    InstanceType,
    Key,
    Model,
    ModelVersion,
)

_lock = threading.Lock()
_client: RegoloClient | None = None


def configure(
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> RegoloClient:
    """Set the key and server the module-level functions use; returns the new client.

    Example: regolo.configure(api_key="rk_admin_...", base_url="http://127.0.0.1:8000")
    """
    global _client
    client = RegoloClient(api_key, base_url=base_url, timeout=timeout, transport=transport)
    with _lock:
        previous, _client = _client, client
    if previous is not None:
        previous.close()
    return client


def default_client() -> RegoloClient:
    """The client behind the module-level functions.  Example: regolo.default_client().base_url"""
    global _client
    with _lock:
        if _client is None:
            _client = RegoloClient()
        return _client


def create_endpoint(
    name: str, model: str, version: str = "1.0", replicas: int = 1, **config: Any
) -> Endpoint:
    """Deploy a model version as a new endpoint.

    Example:
        endpoint = regolo.create_endpoint(
            name="sentiment-api", model="sentiment-classifier", version="1.0", replicas=2
        )
        print(endpoint.id, endpoint.url, endpoint.status)
    """
    return default_client().create_endpoint(name, model, version, replicas, **config)


def get_endpoint(endpoint_id: str) -> Endpoint:
    """One endpoint by id or name.  Example: regolo.get_endpoint("sentiment-api").status"""
    return default_client().get_endpoint(endpoint_id)


def list_endpoints() -> list[Endpoint]:
    """Every endpoint.  Example: for e in regolo.list_endpoints(): print(e.name, e.status)"""
    return default_client().list_endpoints()


def update_endpoint(endpoint_id: str, **changes: Any) -> Endpoint:
    """Change an endpoint.

    Example: regolo.update_endpoint(endpoint_id="sentiment-api", replicas=10)
    """
    return default_client().update_endpoint(endpoint_id, **changes)


def delete_endpoint(endpoint_id: str) -> None:
    """Delete an endpoint.  Example: regolo.delete_endpoint(endpoint_id="sentiment-api")"""
    default_client().delete_endpoint(endpoint_id)


def create_canary(
    endpoint_id: str, new_version: str, traffic_percentage: float, **opts: Any
) -> Canary:
    """Start a canary of ``new_version`` with a share of the traffic.

    Example:
        canary = regolo.create_canary("sentiment-api", new_version="1.1", traffic_percentage=5)
        print(canary.new_version, canary.traffic_percentage)
    """
    return default_client().create_canary(endpoint_id, new_version, traffic_percentage, **opts)


def update_endpoint_traffic(endpoint_id: str, version_traffic: dict[str, float]) -> Endpoint:
    """Split traffic between versions.

    Example: regolo.update_endpoint_traffic("sentiment-api", {"1.0": 0, "1.1": 1.0})
    """
    return default_client().update_endpoint_traffic(endpoint_id, version_traffic)


def rollback_endpoint(endpoint_id: str, to_version: str | None = None) -> Endpoint:
    """Return all traffic to the stable version.

    Example: regolo.rollback_endpoint("sentiment-api")
    """
    return default_client().rollback_endpoint(endpoint_id, to_version)


def promote_canary(endpoint_id: str) -> Endpoint:
    """Make the canary the stable version.  Example: regolo.promote_canary("sentiment-api")"""
    return default_client().promote_canary(endpoint_id)


def wait_for_endpoint(
    endpoint_id: str,
    status: str = "ready",
    timeout: float = 600.0,
    poll_interval_seconds: float = 2.0,
) -> Endpoint:
    """Block until the endpoint reaches ``status``.

    Example: print(regolo.wait_for_endpoint("sentiment-api", timeout=300).url)
    """
    return default_client().wait_for_endpoint(endpoint_id, status, timeout, poll_interval_seconds)


def add_model(
    url: str, name: str | None = None, version: str | None = None, **opts: Any
) -> ModelVersion:
    """Add a Hugging Face model to the library.

    Example: regolo.add_model("https://huggingface.co/meta-llama/Llama-2-7b-hf", name="llama")
    """
    return default_client().add_model(url, name, version, **opts)


def list_models() -> list[Model]:
    """The model library.  Example: for m in regolo.list_models(): print(m.name)"""
    return default_client().list_models()


def get_model(name: str) -> Model:
    """One library model.  Example: regolo.get_model("llama").versions[-1].status"""
    return default_client().get_model(name)


def delete_model(name: str, version: str | None = None) -> None:
    """Delete a model or one version.  Example: regolo.delete_model("llama", version="1.0")"""
    default_client().delete_model(name, version)


def list_model_instances(name: str, version: str | None = None) -> list[InstanceFit]:
    """Instance types for a model version, with fit and price.

    Example: [f.instance_type for f in regolo.list_model_instances("llama") if f.fits]
    """
    return default_client().list_model_instances(name, version)


def list_instances() -> list[InstanceType]:
    """The instance catalog.  Example: [i.id for i in regolo.list_instances() if i.available]"""
    return default_client().list_instances()


def create_key(
    name: str,
    scopes: Sequence[str] = (ALL_MODELS_SCOPE,),
    expires_at: datetime | None = None,
    rate_limit_rpm: int | None = None,
    rate_limit_tpm: int | None = None,
) -> CreatedKey:
    """Mint an API key; keep ``.key``, it is shown only once.

    Example: print(regolo.create_key("app", scopes=["inference:*"]).key)
    """
    return default_client().create_key(name, scopes, expires_at, rate_limit_rpm, rate_limit_tpm)


def list_keys() -> list[Key]:
    """Every API key (no secrets).  Example: [k.prefix for k in regolo.list_keys()]"""
    return default_client().list_keys()


def revoke_key(key_id: str) -> Key:
    """Revoke an API key.  Example: regolo.revoke_key("key_123")"""
    return default_client().revoke_key(key_id)


def get_endpoint_metrics(endpoint_id: str, time_range: str = "24h") -> EndpointMetrics:
    """An endpoint's metrics over ``15m``, ``1h``, ``24h``, ``7d`` or ``30d``.

    Example:
        metrics = regolo.get_endpoint_metrics(endpoint_id="sentiment-api", time_range="24h")
        print(f"Requests: {metrics.request_count}, error rate: {metrics.error_rate:.2%}")
    """
    return default_client().get_endpoint_metrics(endpoint_id, time_range)


def check_endpoint_health(endpoint_id: str) -> EndpointHealth:
    """Replica readiness of an endpoint.

    Example:
        health = regolo.check_endpoint_health(endpoint_id="sentiment-api")
        print(f"{health.status}: {health.ready_replicas} / {health.total_replicas}")
    """
    return default_client().check_endpoint_health(endpoint_id)


def get_endpoint_slo(endpoint_id: str, time_range: str = "30d") -> EndpointSlo:
    """An endpoint's SLOs over a window.  Example: regolo.get_endpoint_slo("sentiment-api").met"""
    return default_client().get_endpoint_slo(endpoint_id, time_range)


def estimate_cost(
    model: str | None = None,
    instance_type: str | None = None,
    replicas: int = 1,
    hours_per_month: int = 720,
    **opts: Any,
) -> CostEstimate:
    """What a deployment would cost per hour and per month.

    Example:
        cost = regolo.estimate_cost(model="Llama-2-7B", instance_type="a100-40gb-x1")
        print(cost.price_per_hour, cost.cost_per_month)  # 0.50 360.00
    """
    return default_client().estimate_cost(model, instance_type, replicas, hours_per_month, **opts)


def get_balance() -> Balance:
    """The account's prepaid credit.  Example: print(regolo.get_balance().balance)"""
    return default_client().get_balance()


def get_usage(month: str | None = None) -> Usage:
    """Charged hours of a month.  Example: regolo.get_usage("2026-01").total_amount"""
    return default_client().get_usage(month)


def list_invoices() -> list[Invoice]:
    """Invoices, the running month's preview first.  Example: regolo.list_invoices()[0].subtotal"""
    return default_client().list_invoices()


def get_invoice(invoice_id: str = "preview") -> Invoice:
    """One invoice.  Example: regolo.get_invoice("preview").amount_due"""
    return default_client().get_invoice(invoice_id)


def download_invoice_pdf(invoice_id: str, path: str | Path) -> Path:
    """Save an invoice as PDF.  Example: regolo.download_invoice_pdf(inv.id, "invoice.pdf")"""
    return default_client().download_invoice_pdf(invoice_id, path)


def topup(
    amount: Decimal | str | int, account_id: str | None = None, note: str | None = None
) -> TopUp:
    """Add prepaid credit (superadmin key).  Example: regolo.topup("50.00", account_id="team-a")"""
    return default_client().topup(amount, account_id, note)


def submit_batch(
    requests: Any,
    endpoint_id: str | None = None,
    *,
    url: str = "/v1/chat/completions",
    completion_window: str = "24h",
    metadata: dict[str, str] | None = None,
) -> Batch:
    """Run a JSONL file (path, list of requests or uploaded file id) on an endpoint.

    Example: regolo.submit_batch(requests="batch.jsonl", endpoint_id="sentiment-api")
    """
    return default_client().submit_batch(
        requests, endpoint_id, url=url, completion_window=completion_window, metadata=metadata
    )


def get_batch(batch_id: str) -> Batch:
    """A batch's status and counts.  Example: regolo.get_batch("batch_123").status"""
    return default_client().get_batch(batch_id)


def list_batches(limit: int = 20) -> list[Batch]:
    """The newest batches first.  Example: [b.id for b in regolo.list_batches()]"""
    return default_client().list_batches(limit)


def get_batch_results(batch_id: str, *, errors: bool = True) -> list[BatchResult]:
    """Every result line of a batch.  Example: regolo.get_batch_results("batch_123")[0].response"""
    return default_client().get_batch_results(batch_id, errors=errors)


def cancel_batch(batch_id: str) -> Batch:
    """Stop a batch, keeping finished lines.  Example: regolo.cancel_batch("batch_123")"""
    return default_client().cancel_batch(batch_id)


def wait_for_batch(batch_id: str, timeout_seconds: float = 86400.0) -> Batch:
    """Poll until the batch ends.  Example: regolo.wait_for_batch(batch.id).request_counts"""
    return default_client().wait_for_batch(batch_id, timeout_seconds)


def configure_autoscaling(
    endpoint_id: str,
    metrics: list[dict[str, Any]],
    min_replicas: int = 1,
    max_replicas: int = 10,
    **windows: Any,
) -> AutoscalingPolicy:
    """Scale an endpoint on its metrics, between ``min_replicas`` and ``max_replicas``.

    Example:
        regolo.configure_autoscaling(
            endpoint_id="sentiment-api",
            metrics=[{"metric": "cpu_usage", "target": 0.7, "scale_up_threshold": 0.8,
                      "scale_down_threshold": 0.3}],
            min_replicas=2,
            max_replicas=50,
        )
    """
    return default_client().configure_autoscaling(
        endpoint_id, metrics, min_replicas, max_replicas, **windows
    )


def get_autoscaling(endpoint_id: str) -> AutoscalingPolicy:
    """An endpoint's autoscaling policy.  Example: regolo.get_autoscaling("sentiment-api")"""
    return default_client().get_autoscaling(endpoint_id)


def list_autoscaling_events(endpoint_id: str, limit: int = 100) -> list[AutoscalingEvent]:
    """Recent scaling decisions with their reasons, newest first.

    Example: [e.reason for e in regolo.list_autoscaling_events("sentiment-api")]
    """
    return default_client().list_autoscaling_events(endpoint_id, limit)
