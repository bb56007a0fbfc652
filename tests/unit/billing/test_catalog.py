from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from regolo.server.billing.catalog import (
    GIB,
    PriceBookError,
    available_instances,
    load_catalog,
    parse_catalog,
)
from regolo.server.errors import NotFound
from regolo.server.specs import Capacity


def test_packaged_price_book() -> None:
    catalog = load_catalog()
    assert catalog.currency == "USD" and catalog.hours_per_month == 720 and catalog.version
    ids = {i.id for i in catalog.instance_types}
    assert {"cpu-small", "cpu-medium", "cpu-large"} <= ids
    for accelerator in (
        "a100-40gb",
        "a100-80gb",
        "h100-80gb",
        "h200-141gb",
        "l40s-48gb",
        "l4-24gb",
    ):
        assert {f"{accelerator}-x{n}" for n in (1, 2, 4, 8)} <= ids
    small = catalog.get("cpu-small")
    assert (small.vcpu, small.ram_gb, small.gpu_count, small.accelerator) == (2, 4, 0, "cpu")
    assert all(isinstance(i.price_per_hour, Decimal) for i in catalog.instance_types)
    h100 = catalog.get("h100-80gb-x4")
    assert (h100.gpu_count, h100.gpu_memory_gb, h100.total_gpu_memory_gb) == (4, 80, 320)
    assert h100.memory_bandwidth_gb_per_s > 0
    with pytest.raises(NotFound):
        catalog.get("tpu-v5")


def test_seed_examples() -> None:
    catalog = load_catalog()
    assert catalog.price_per_month(catalog.get("a100-40gb-x1")) == Decimal("360.00")
    assert catalog.get("a100-80gb-x2").price_per_hour == Decimal("2.00")
    assert catalog.price_per_month(catalog.get("a100-80gb-x2")) == Decimal("1440.00")


def test_override_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": "test",
                "currency": "EUR",
                "accelerators": {
                    "cpu": {"memory_gb": 0, "memory_bandwidth_gb_per_s": 0},
                    "A100-80GB": {"memory_gb": 80, "memory_bandwidth_gb_per_s": 2039},
                },
                "instance_types": [
                    {
                        "id": "tiny",
                        "accelerator": "cpu",
                        "vcpu": 1,
                        "ram_gb": 1,
                        "price_per_hour": "0.013",
                        "memory_bandwidth_gb_per_s": 5,
                    },
                    {
                        "id": "big",
                        "accelerator": "A100-80GB",
                        "gpu_count": 1,
                        "vcpu": 8,
                        "ram_gb": 64,
                        "price_per_hour": 1.1,
                    },
                ],
            }
        )
    )
    catalog = load_catalog(path)
    assert catalog.get("tiny").price_per_hour == Decimal("0.013")
    assert catalog.get("big").price_per_hour == Decimal("1.1")
    assert catalog.get("big").currency == "EUR"


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"version": "x"},
        {
            "version": "x",
            "currency": "USD",
            "accelerators": {},
            "instance_types": [
                {"id": "a", "accelerator": "nope", "vcpu": 1, "ram_gb": 1, "price_per_hour": "1"}
            ],
        },
        {
            "version": "x",
            "currency": "USD",
            "accelerators": {"cpu": {"memory_gb": 0, "memory_bandwidth_gb_per_s": 1}},
            "instance_types": [
                {"id": "a", "accelerator": "cpu", "vcpu": 1, "ram_gb": 1, "price_per_hour": "x"}
            ],
        },
        {
            "version": "x",
            "currency": "USD",
            "accelerators": {"cpu": {"memory_gb": 0, "memory_bandwidth_gb_per_s": 1}},
            "instance_types": [
                {"id": "a", "accelerator": "cpu", "vcpu": 1, "ram_gb": 1, "price_per_hour": "1"},
                {"id": "a", "accelerator": "cpu", "vcpu": 1, "ram_gb": 1, "price_per_hour": "1"},
            ],
        },
    ],
)
def test_malformed_price_books(document: object) -> None:
    with pytest.raises(PriceBookError):
        parse_catalog(document)


def test_available_on_a_cpu_host() -> None:
    catalog = load_catalog()
    capacity = Capacity(cpu_cores=4.0, memory_bytes=16 * GIB)
    ids = {i.id for i in available_instances(catalog, capacity)}
    assert ids == {"cpu-small", "cpu-medium"}


def test_available_matches_nvidia_smi_names() -> None:
    catalog = load_catalog()
    capacity = Capacity(
        cpu_cores=64.0, memory_bytes=512 * GIB, gpus={"NVIDIA A100-SXM4-80GB": 2, "NVIDIA L4": 1}
    )
    ids = {i.id for i in available_instances(catalog, capacity)}
    assert {"a100-80gb-x1", "a100-80gb-x2", "l4-24gb-x1", "cpu-large"} <= ids
    assert not ids & {"a100-80gb-x4", "a100-40gb-x1", "l40s-48gb-x1", "l4-24gb-x2", "h100-80gb-x1"}


def test_available_with_catalog_names_and_backend_filter() -> None:
    catalog = load_catalog()
    capacity = Capacity(
        cpu_cores=8.0, memory_bytes=64 * GIB, gpus={"H100-80GB": 1, "NVIDIA L40S": 1}
    )
    ids = {i.id for i in available_instances(catalog, capacity)}
    assert {"h100-80gb-x1", "l40s-48gb-x1"} <= ids and "l4-24gb-x1" not in ids
    assert available_instances(catalog, capacity, backend="kubernetes") == []
