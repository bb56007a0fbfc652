"""An OpenAI-compatible inference server on top of Hugging Face transformers.

Run as ``python -m regolo.server.runtimes.transformers_server --model PATH --task TASK ...``.
It serves one model: text generation (chat and completions, batched step by step across
concurrent requests), text classification (answered through chat completions) or feature
extraction (``/v1/embeddings``). Remote code is never trusted.
"""
