"""Ready-to-copy usage snippets for an endpoint: only the key's visible prefix appears."""

from __future__ import annotations

import json


def key_hint(key_prefix: str) -> str:
    return f"{key_prefix}_..."


def curl_snippet(*, endpoint_url: str, model: str, key_prefix: str) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    return (
        f'export REGOLO_API_KEY="{key_hint(key_prefix)}"  # paste your full key\n'
        f"curl {endpoint_url}/chat/completions \\\n"
        '  -H "Authorization: Bearer $REGOLO_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'"
    )


def python_snippet(*, endpoint_url: str, model: str, key_prefix: str) -> str:
    return (
        "import regolo\n\n"
        "client = regolo.RegoloClient(\n"
        f'    api_key="{key_hint(key_prefix)}",  # paste your full key\n'
        f'    endpoint_url="{endpoint_url.removesuffix("/v1")}",\n'
        ")\n"
        "response = client.static_chat_completions(\n"
        f'    model="{model}",\n'
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        ")\n"
        "print(response.choices[0].message.content)"
    )
