"""The benchmark's upstream: the tests' minimal OpenAI-compatible server, as a process.

python benchmarks/fake_upstream.py --port 8101 --id replica-1
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_openai_server import main

if __name__ == "__main__":
    main()
