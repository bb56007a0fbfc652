"""Turning chat messages into prompt token ids with the model's own chat template."""

from __future__ import annotations

from typing import Any

from regolo.server.runtimes.transformers_server.schemas import ChatMessage


def chat_prompt_ids(tokenizer: Any, messages: list[ChatMessage]) -> list[int]:
    conversation = [{"role": message.role, "content": message.text()} for message in messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=False
        )
        # The template already wrote any BOS token; adding special tokens would double it.
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return text_prompt_ids(tokenizer, _plain_transcript(conversation))


def text_prompt_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


def classification_text(messages: list[ChatMessage]) -> str:
    """A classifier judges the last user message (the seed sends one message)."""
    user_messages = [message.text() for message in messages if message.role == "user"]
    return user_messages[-1] if user_messages else messages[-1].text()


def _plain_transcript(conversation: list[dict[str, str]]) -> str:
    lines = [f"{turn['role']}: {turn['content']}" for turn in conversation]
    return "\n".join([*lines, "assistant:"])
