"""The README's promise: a fresh platform comes up with the demo model ready to chat."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.support.live import live_server


def test_demo_endpoint_answers_the_openai_client(home: Path) -> None:
    with live_server(home, demo=True) as server:
        server.wait_ready("demo")
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.admin_key)
        reply = client.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "Say hello"}],
            max_tokens=8,
            temperature=0,
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None and reply.usage.completion_tokens > 0
        models = {m.id for m in client.models.list()}
        assert "demo" in models
