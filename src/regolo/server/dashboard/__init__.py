"""The web dashboard: server-rendered pages over the public REST API (see ``app``)."""
