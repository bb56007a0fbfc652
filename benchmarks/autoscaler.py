"""Autoscaler benchmark: how fast a load step is answered, and how calm a noisy load stays.

Replays the same traces in simulated time through regolo's decision (1 s ticks, 6 s
panic window, 60 s stable window) and through the Kubernetes HPA formula with its
defaults (15 s sync, 10 % tolerance, 300 s scale-down stabilization, scale-up limited
to max(+100 %, +4) per sync), one replica taking ``--startup-seconds`` to be ready.

With ``--live`` it also runs the real platform (fake replicas answering in 0.2 s),
steps the load from 0 to 8 concurrent clients, and measures from the step to the first
recorded scale decision and to the extra replicas being ready.

Targets (issue 8): first decision within 5 s of a step; no more oscillations than HPA.

    python benchmarks/autoscaler.py [--startup-seconds 10] [--seed 1] [--traces 20] [--live]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from regolo.server.autoscaling.policy import policy_from_dict  # noqa: E402
from regolo.server.autoscaling.simulate import (  # noqa: E402
    HpaSettings,
    Run,
    simulate_hpa,
    simulate_regolo,
)

TARGET_RPM = 100.0
POLICY = policy_from_dict(
    {
        "metrics": [{"metric": "request_rate", "target": TARGET_RPM}],
        "min_replicas": 2,
        "max_replicas": 50,
    }
)
HPA = HpaSettings(target=TARGET_RPM, min_replicas=2, max_replicas=50)
STEP_AT, STEP_SECONDS, NEEDED = 67, 900, 20  # 67: between two HPA syncs


def step_trace(t: float) -> float:
    return 200.0 if t < STEP_AT else 2000.0  # 2 -> 20 replicas' worth


def noisy_trace(seed: int) -> Any:
    rng = random.Random(seed)
    noise = [1000.0 * max(0.0, 1.0 + rng.gauss(0.0, 0.3)) for _ in range(3600)]
    return lambda t: noise[int(t)]


def _step_numbers(run: Run) -> dict[str, Any]:
    return {
        "first_decision_seconds": run.first_change_after(STEP_AT),
        "capacity_in_place_seconds": run.capacity_after(STEP_AT, NEEDED),
        "decisions": len(run.changes),
    }


def _noise_numbers(run: Run) -> dict[str, Any]:
    return {
        "direction_changes": run.direction_changes(),
        "replica_changes": len(run.changes),
        "replicas_min": min(run.replicas),
        "replicas_max": max(run.replicas),
    }


def simulated(startup_seconds: float, seed: int, seeds: int) -> dict[str, Any]:
    step = {
        "regolo": _step_numbers(
            simulate_regolo(
                step_trace, POLICY, seconds=STEP_SECONDS, initial=2, startup_seconds=startup_seconds
            )
        ),
        "hpa": _step_numbers(
            simulate_hpa(
                step_trace, HPA, seconds=STEP_SECONDS, initial=2, startup_seconds=startup_seconds
            )
        ),
    }
    noisy: dict[str, Any] = {}
    for name, simulate in (
        (
            "regolo",
            lambda tr: simulate_regolo(
                tr, POLICY, seconds=3600, initial=10, startup_seconds=startup_seconds
            ),
        ),
        (
            "hpa",
            lambda tr: simulate_hpa(
                tr, HPA, seconds=3600, initial=10, startup_seconds=startup_seconds
            ),
        ),
    ):
        runs = [_noise_numbers(simulate(noisy_trace(seed + i))) for i in range(seeds)]
        noisy[name] = {
            "traces": seeds,
            "direction_changes_total": sum(r["direction_changes"] for r in runs),
            "direction_changes_max_per_trace": max(r["direction_changes"] for r in runs),
            "replica_changes_total": sum(r["replica_changes"] for r in runs),
            "replicas_min": min(r["replicas_min"] for r in runs),
            "replicas_max": max(r["replicas_max"] for r in runs),
        }
    return {"step_2_to_20_replicas": step, "noisy_1000_rpm_sd30pct_1h": noisy}


def live() -> dict[str, Any]:
    """The real loop: from a load step to the first recorded decision and to capacity."""
    from tests.support.live import live_server
    from tests.support.seed_models import SEED_MODEL, register_seed_model
    from tests.support.serving_backend import ServingFakeBackend

    backend = ServingFakeBackend(delay_seconds=0.2)
    policy = {
        "metrics": [{"metric": "concurrency", "target": 2}],
        "min_replicas": 1,
        "max_replicas": 4,
    }
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    try:
        with (
            tempfile.TemporaryDirectory() as home,
            live_server(Path(home), backend=backend) as server,
        ):
            with server.client() as http:
                register_seed_model(http)
                http.post(
                    "/v1/endpoints", json={"name": "bench", "model": SEED_MODEL, "replicas": 1}
                )
                server.wait_ready("bench", timeout=60)
                http.put("/v1/endpoints/bench/autoscaling", json=policy)
                key = http.post("/v1/keys", json={"name": "b", "scopes": ["inference:*"]}).json()[
                    "key"
                ]
                stop = threading.Event()

                def client() -> None:
                    with server.client(key) as c:
                        while not stop.is_set():
                            c.post("/endpoints/bench/v1/chat/completions", json=chat)

                started = time.time()
                threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
                for thread in threads:
                    thread.start()
                capacity = None
                first: float | None = None
                while time.time() - started < 60 and capacity is None:
                    body = http.get("/v1/endpoints/bench").json()
                    if sum(d["ready_replicas"] for d in body["deployments"]) >= 4:
                        capacity = time.time() - started
                    time.sleep(0.1)
                stop.set()
                for thread in threads:
                    thread.join(30)
                events = http.get("/v1/endpoints/bench/autoscaling/events").json()["data"]
                scales = [e for e in events if e["kind"] == "scale"]
                if scales:
                    first = _epoch(scales[-1]["at"]) - started
        return {
            "first_decision_seconds": first,
            "capacity_in_place_seconds": capacity,
            "replicas": "1 -> 4",
        }
    finally:
        backend.stop_all()


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--startup-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--traces", type=int, default=20, help="noisy traces (seeds) to replay")
    parser.add_argument("--live", action="store_true", help="also measure the real platform")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "autoscaler",
        "startup_seconds": args.startup_seconds,
        "simulated": simulated(args.startup_seconds, args.seed, args.traces),
    }
    if args.live:
        result["live_fake_replicas"] = live()
    step = result["simulated"]["step_2_to_20_replicas"]
    noisy = result["simulated"]["noisy_1000_rpm_sd30pct_1h"]
    first = step["regolo"]["first_decision_seconds"]
    result["targets"] = {
        "first_decision_within_5_seconds": first is not None and first <= 5,
        "oscillations_not_above_hpa": noisy["regolo"]["direction_changes_total"]
        <= noisy["hpa"]["direction_changes_total"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
