"""The OpenAI-compatible data plane (app.py).

A compiled build of its hot path (``python -m regolo.server.gateway.speedups``) is put
first on this package's path, before any of its modules loads, when it was built from
the current sources.
"""

from regolo.server.gateway._build import activate

activate(__path__)
