"""Entry point: parse options, serve HTTP at once, load the model in the background.

``/health`` answers 503 until the model is loaded and warm. If loading fails the process
exits with status 1, so the backend sees the replica fail instead of waiting forever.
"""

from __future__ import annotations

import logging
import threading

import uvicorn

from regolo.server.runtimes.transformers_server.app import create_app
from regolo.server.runtimes.transformers_server.config import parse_args
from regolo.server.runtimes.transformers_server.state import ServerState

log = logging.getLogger("regolo.transformers_server")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = parse_args(argv)
    state = ServerState(config)
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host=config.host, port=config.port, log_level="info")
    )
    loader = threading.Thread(target=_load, args=(state, server), name="model-loader", daemon=True)
    loader.start()
    server.run()
    state.stop()
    return 1 if state.load_error else 0


def _load(state: ServerState, server: uvicorn.Server) -> None:
    try:
        state.load()
    except Exception as error:
        log.exception("the model failed to load")
        state.load_error = type(error).__name__
        server.should_exit = True


if __name__ == "__main__":
    raise SystemExit(main())
