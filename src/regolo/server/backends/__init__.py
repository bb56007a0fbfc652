"""Replica backends: the only code that starts or stops replicas (``local``, ``fake``)."""
