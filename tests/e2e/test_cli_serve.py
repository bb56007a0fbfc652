"""`regolo serve` as a user runs it: the banner, the key file, and the printed curl works."""

from __future__ import annotations

import os
import re
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.live import free_port

REGOLO = str(Path(sys.executable).parent / "regolo")


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    """Raw reads from the pipe: a buffered readline would hide data from select()."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"{marker!r} not printed; output so far:\n{seen.decode()}")
        if selector.select(timeout=0.5):
            seen += os.read(fd, 65536)
    return seen.decode()


def test_serve_prints_key_once_and_a_working_curl(home: Path) -> None:
    port = free_port()
    env = {**os.environ, "REGOLO_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [REGOLO, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output = _read_until(process, "print(reply.choices[0].message.content)", 240)
        key_file = home / "admin-key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert output.count(key) >= 2  # the banner shows it once, the examples use it
        assert f"http://127.0.0.1:{port}/v1" in output

        curl = re.search(r"(curl .*?\}'\n)", output, re.DOTALL)
        assert curl is not None
        reply = subprocess.run(
            ["bash", "-c", curl.group(1)], capture_output=True, text=True, timeout=120
        )
        assert '"choices"' in reply.stdout, reply.stdout + reply.stderr

        # Replicas listen on loopback only (RELIABILITY S11).
        for child in psutil.Process(process.pid).children(recursive=True):
            for connection in child.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    assert connection.laddr.ip == "127.0.0.1"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    # A second start shows where the key is, never the key itself.
    again = subprocess.Popen(
        [REGOLO, "serve", "--port", str(free_port()), "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        banner = _read_until(again, "Admin key", 60)
        time.sleep(1)
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(60)
    assert key not in banner
    assert str(home / "admin-key") in banner
    assert "Gateway   : Python" in banner or "Gateway   : compiled" in banner
