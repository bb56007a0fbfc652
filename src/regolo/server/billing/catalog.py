"""The instance type catalog: a versioned price book shipped in the package.

``load_catalog()`` reads ``pricebook.yaml`` next to this module (or an operator's file)
with ``yaml.safe_load``. Prices are ``Decimal``; memory sizes are GiB.
``available_instances`` says which types a backend can provide now, given its capacity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from regolo.server.errors import NotFound
from regolo.server.specs import Capacity

GIB = 2**30
CPU = "cpu"
_PACKAGED = "pricebook.yaml"


class PriceBookError(ValueError):
    """The price book file is malformed."""


@dataclass(frozen=True, kw_only=True)
class Accelerator:
    name: str
    memory_gb: int  # GiB per device
    memory_bandwidth_gb_per_s: float
    match: tuple[str, ...]

    def matches(self, gpu_name: str) -> bool:
        """Whether a GPU name reported by a backend (nvidia-smi, Ray) is this accelerator."""
        if gpu_name == self.name:
            return True
        tokens = {t.upper() for t in re.split(r"[^A-Za-z0-9]+", gpu_name) if t}
        return bool(self.match) and all(m.upper() in tokens for m in self.match)


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    id: str
    accelerator: str  # an Accelerator name, or "cpu"
    gpu_count: int
    gpu_memory_gb: int  # GiB per GPU; 0 for CPU instances
    vcpu: int
    ram_gb: int  # GiB
    price_per_hour: Decimal
    currency: str
    backends: tuple[str, ...]
    memory_bandwidth_gb_per_s: float  # per GPU; the whole host for CPU instances

    @property
    def is_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def total_gpu_memory_gb(self) -> int:
        return self.gpu_count * self.gpu_memory_gb


@dataclass(frozen=True, kw_only=True)
class Catalog:
    version: str
    currency: str
    hours_per_month: int
    accelerators: tuple[Accelerator, ...]
    instance_types: tuple[InstanceType, ...]

    def get(self, instance_type_id: str) -> InstanceType:
        for instance in self.instance_types:
            if instance.id == instance_type_id:
                return instance
        raise NotFound(f"unknown instance type {instance_type_id!r}", param="instance_type")

    def accelerator(self, name: str) -> Accelerator | None:
        return next((a for a in self.accelerators if a.name == name), None)

    def price_per_month(self, instance: InstanceType) -> Decimal:
        return instance.price_per_hour * self.hours_per_month


def load_catalog(path: Path | None = None) -> Catalog:
    """Load the packaged price book, or the one at ``path``."""
    if path is None:
        text = resources.files(__package__).joinpath(_PACKAGED).read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return parse_catalog(yaml.safe_load(text))


def parse_catalog(document: Any) -> Catalog:
    if not isinstance(document, dict):
        raise PriceBookError("the price book must be a mapping")
    try:
        currency = str(document["currency"])
        accelerators = tuple(
            _accelerator(name, entry) for name, entry in document["accelerators"].items()
        )
        by_name = {a.name: a for a in accelerators}
        instances = tuple(
            _instance(entry, currency, by_name) for entry in document["instance_types"]
        )
        catalog = Catalog(
            version=str(document["version"]),
            currency=currency,
            hours_per_month=int(document.get("hours_per_month", 720)),
            accelerators=accelerators,
            instance_types=instances,
        )
    except (KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        raise PriceBookError(f"malformed price book: {exc!r}") from exc
    _check_unique(catalog)
    return catalog


def available_instances(
    catalog: Catalog, capacity: Capacity, *, backend: str | None = None
) -> list[InstanceType]:
    """Instance types the backend can provide with its current capacity.

    CPU types need their vCPUs and RAM on the host. GPU types need that many GPUs of
    their accelerator; their vCPU and RAM figures are the cloud shape, not enforced here.
    """
    return [
        instance
        for instance in catalog.instance_types
        if (backend is None or backend in instance.backends)
        and _fits_capacity(catalog, instance, capacity)
    ]


def _fits_capacity(catalog: Catalog, instance: InstanceType, capacity: Capacity) -> bool:
    if not instance.is_gpu:
        return (
            instance.vcpu <= capacity.cpu_cores and instance.ram_gb * GIB <= capacity.memory_bytes
        )
    accelerator = catalog.accelerator(instance.accelerator)
    if accelerator is None:
        return False
    present = sum(count for name, count in capacity.gpus.items() if accelerator.matches(name))
    return present >= instance.gpu_count


def _accelerator(name: str, entry: dict[str, Any]) -> Accelerator:
    return Accelerator(
        name=name,
        memory_gb=int(entry["memory_gb"]),
        memory_bandwidth_gb_per_s=float(entry["memory_bandwidth_gb_per_s"]),
        match=tuple(str(m) for m in entry.get("match") or ()),
    )


def _instance(
    entry: dict[str, Any], currency: str, accelerators: dict[str, Accelerator]
) -> InstanceType:
    accelerator = accelerators.get(entry["accelerator"])
    if accelerator is None:
        raise PriceBookError(f"instance {entry.get('id')!r}: unknown accelerator")
    gpu_count = int(entry.get("gpu_count", 0))
    bandwidth = entry.get("memory_bandwidth_gb_per_s", accelerator.memory_bandwidth_gb_per_s)
    price = Decimal(str(entry["price_per_hour"]))
    if price < 0:
        raise PriceBookError(f"instance {entry['id']!r}: negative price")
    return InstanceType(
        id=str(entry["id"]),
        accelerator=accelerator.name,
        gpu_count=gpu_count,
        gpu_memory_gb=accelerator.memory_gb if gpu_count else 0,
        vcpu=int(entry["vcpu"]),
        ram_gb=int(entry["ram_gb"]),
        price_per_hour=price,
        currency=str(entry.get("currency", currency)),
        backends=tuple(str(b) for b in entry.get("backends") or ()),
        memory_bandwidth_gb_per_s=float(bandwidth),
    )


def _check_unique(catalog: Catalog) -> None:
    ids = [instance.id for instance in catalog.instance_types]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PriceBookError(f"duplicate instance type ids: {duplicates}")
