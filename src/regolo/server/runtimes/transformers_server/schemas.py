"""Wire schemas of the OpenAI routes this server answers (requests only; responses are built
in ``responses.py``). Unknown fields are ignored, as OpenAI clients send many optional ones."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_STOP_SEQUENCES = 4


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatMessage(_Request):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str) or self.content is None:
            return self.content or ""
        return "".join(
            str(part.get("text", "")) for part in self.content if part.get("type") == "text"
        )


class StreamOptions(_Request):
    include_usage: bool = False


class _Generation(_Request):
    model: str = ""
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stop_sequences(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(stop for stop in stops[:MAX_STOP_SEQUENCES] if stop)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Generation):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)  # the OpenAI default for completions

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def prompt_text(self) -> str | None:
        """The single prompt, or None when several were sent (not supported)."""
        if isinstance(self.prompt, str):
            return self.prompt
        return self.prompt[0] if len(self.prompt) == 1 else None


class EmbeddingRequest(_Request):
    model: str = ""
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
