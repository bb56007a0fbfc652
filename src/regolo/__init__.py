"""Regolo Endpoints SDK: deploy models as private OpenAI-compatible endpoints and call them.

Example:
    import regolo

    endpoint = regolo.create_endpoint(name="sentiment-api", model="sentiment-classifier")
    client = regolo.RegoloClient(endpoint_url=endpoint.url)
    reply = client.static_chat_completions(messages=[{"role": "user", "content": "Hi"}])
    print(reply.choices[0].message.content)
"""

from regolo._default_client import (
    add_model,
    configure,
    create_canary,
    create_endpoint,
    create_key,
    default_client,
    delete_endpoint,
    delete_model,
    get_endpoint,
    get_model,
    list_endpoints,
    list_instances,
    list_keys,
    list_model_instances,
    list_models,
    promote_canary,
    revoke_key,
    rollback_endpoint,
    update_endpoint,
    update_endpoint_traffic,
    wait_for_endpoint,
)
from regolo.client import RegoloClient
from regolo.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RegoloError,
    ServerError,
)
from regolo.types import (
    Canary,
    ChatCompletion,
    Completion,
    CreatedKey,
    Deployment,
    EmbeddingList,
    Endpoint,
    InstanceFit,
    InstanceType,
    Key,
    Model,
    ModelVersion,
)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Canary",
    "ChatCompletion",
    "Completion",
    "ConflictError",
    "CreatedKey",
    "Deployment",
    "EmbeddingList",
    "Endpoint",
    "InstanceFit",
    "InstanceType",
    "Key",
    "Model",
    "ModelVersion",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RegoloClient",
    "RegoloError",
    "ServerError",
    "add_model",
    "configure",
    "create_canary",
    "create_endpoint",
    "create_key",
    "default_client",
    "delete_endpoint",
    "delete_model",
    "get_endpoint",
    "get_model",
    "list_endpoints",
    "list_instances",
    "list_keys",
    "list_model_instances",
    "list_models",
    "promote_canary",
    "revoke_key",
    "rollback_endpoint",
    "update_endpoint",
    "update_endpoint_traffic",
    "wait_for_endpoint",
]
