"""The objects the SDK returns, one pydantic model per API resource.

Every model allows extra fields, so a newer server never breaks an older SDK, and
every field the server may omit has a default.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RegoloObject(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


# --- inference (OpenAI-compatible) -------------------------------------------------


class Usage(RegoloObject):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatMessage(RegoloObject):
    role: str = "assistant"
    content: str | None = None


class ChatChoice(RegoloObject):
    index: int = 0
    message: ChatMessage = Field(default_factory=ChatMessage)
    finish_reason: str | None = None


class ChatCompletion(RegoloObject):
    id: str = ""
    object: str = "chat.completion"
    created: int | None = None
    model: str | None = None
    choices: list[ChatChoice] = Field(default_factory=list)
    usage: Usage | None = None


class CompletionChoice(RegoloObject):
    index: int = 0
    text: str = ""
    finish_reason: str | None = None


class Completion(RegoloObject):
    id: str = ""
    object: str = "text_completion"
    created: int | None = None
    model: str | None = None
    choices: list[CompletionChoice] = Field(default_factory=list)
    usage: Usage | None = None


class Embedding(RegoloObject):
    index: int = 0
    embedding: list[float] = Field(default_factory=list)
    object: str = "embedding"


class EmbeddingList(RegoloObject):
    object: str = "list"
    data: list[Embedding] = Field(default_factory=list)
    model: str | None = None
    usage: Usage | None = None


# --- API keys ----------------------------------------------------------------------


class Key(RegoloObject):
    id: str
    name: str
    prefix: str = ""
    scopes: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rate_limit_rpm: int | None = None
    rate_limit_tpm: int | None = None


class CreatedKey(Key):
    key: str  # the raw secret; the server shows it only in this response


# --- model library -----------------------------------------------------------------


class DownloadProgress(RegoloObject):
    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0


class ModelFacts(RegoloObject):
    format: str | None = None
    task: str | None = None
    architecture: str | None = None
    parameter_count: int | None = None
    dtype: str | None = None
    context_length: int | None = None
    size_bytes: int | None = None
    license: str | None = None
    has_chat_template: bool | None = None


class ModelVersion(RegoloObject):
    id: str
    model: str
    version: str
    source: str | None = None
    revision: str | None = None
    status: str = "downloading"  # downloading | ready | failed
    status_reason: str | None = None
    commit_sha: str | None = None
    progress: DownloadProgress = Field(default_factory=DownloadProgress)
    facts: ModelFacts | None = None  # known once the files are inspected
    created_at: datetime | None = None


class Model(RegoloObject):
    id: str
    name: str
    versions: list[ModelVersion] = Field(default_factory=list)
    created_at: datetime | None = None


class InstanceFit(RegoloObject):
    """Whether a model version fits an instance type, and what it would cost."""

    instance_type: str
    fits: bool
    reason: str | None = None
    gpus: int | None = None
    price_per_hour: Decimal | None = None
    price_per_month: Decimal | None = None
    estimated_tokens_per_second: float | None = None


class InstanceType(RegoloObject):
    id: str
    accelerator: str | None = None
    gpu_count: int = 0
    gpu_memory_gb: float | None = None
    vcpu: int | None = None
    ram_gb: float | None = None
    price_per_hour: Decimal = Decimal("0")
    currency: str = "USD"
    available: bool = True


# --- endpoints ---------------------------------------------------------------------


class Deployment(RegoloObject):
    id: str
    version: str
    traffic_weight: float = 0.0
    replicas: int = 0
    ready_replicas: int = 0
    status: str | None = None


class Endpoint(RegoloObject):
    id: str
    name: str
    model: str
    version: str | None = None
    status: str = "pending"
    status_reason: str | None = None
    url: str | None = None
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_utilization: float | None = None
    cpu_request: str | None = None
    memory_request: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    request_timeout_seconds: float | None = None
    enable_cache: bool = False
    enable_compression: bool = False
    instance_type: str | None = None
    deployments: list[Deployment] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Canary(RegoloObject):
    endpoint_id: str
    new_version: str
    stable_version: str | None = None
    traffic_percentage: int | float  # as given: 5 prints "5", 2.5 prints "2.5"
    deployment_id: str | None = None


JSONDict = dict[str, Any]
