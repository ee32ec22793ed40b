"""Run SQL with Daft on a Ray cluster over the lake's Delta tables; a standalone driver.

It runs with `.venv-ray/bin/python` (Daft and Ray, pyarrow<26), so it imports nothing of the
repo: the lake reaches it only as table URIs and delta-rs storage options, as it would reach
any other engine. The job comes as JSON on stdin:

    {"address": "127.0.0.1:6379",              # the cluster's GCS
     "min_nodes": 2,                            # wait until this many nodes are alive
     "tables": {"silver.orders": "s3://b/orders", "gold.daily": "/lake/gold/daily"},
     "storage_options": {"AWS_ENDPOINT_URL": "http://127.0.0.1:8333", ...},
     "queries": {"q1": "SELECT ... FROM silver.orders ..."}}

Queries name the tables as the job does (`silver.orders`). The report goes to stdout as one
JSON line: the nodes, the Daft actors this job placed on each, and per query its columns,
rows (dates as ISO text, decimals as floats) and wall time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import sys
import time
from typing import Any

NODE_WAIT_S = 30.0


def _connect(address: str, min_nodes: int) -> list[dict[str, Any]]:
    """Join the cluster as a driver and wait for its nodes; the alive nodes."""
    import ray
    import ray._private.services as services

    # ray.init would turn 127.0.0.1 into the machine's outward address, where a local test
    # cluster does not listen (see devtools/raycluster.py).
    services.resolve_ip_for_localhost = lambda host: host
    ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    deadline = time.monotonic() + NODE_WAIT_S
    while True:
        alive = [n for n in ray.nodes() if n["Alive"]]
        if len(alive) >= min_nodes or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if len(alive) < min_nodes:
        raise RuntimeError(f"{len(alive)} of {min_nodes} Ray nodes alive after {NODE_WAIT_S} s")
    return [
        {
            "id": n["NodeID"],
            "address": n["NodeManagerAddress"],
            "cpus": n["Resources"].get("CPU", 0),
            "head": "node:__internal_head__" in n["Resources"],
        }
        for n in alive
    ]


def _duration_ms(text: str) -> int | None:
    """object_store durations ("5s", "500ms", "2min") in milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m)?\s*", text)
    if not m:
        return None
    scale = {"ms": 1, "s": 1000, None: 1000, "min": 60_000, "m": 60_000}[m.group(2)]
    return int(float(m.group(1)) * scale)


def io_config(options: dict[str, str]) -> Any:
    """delta-rs/object_store S3 options as Daft's IOConfig (None for a local lake).

    object_store takes its keys in any case, with or without `aws_`; so does this."""
    if not options:
        return None
    from daft.io import IOConfig, S3Config

    opts = {k.lower().removeprefix("aws_"): v for k, v in options.items()}

    def flag(name: str) -> bool | None:
        value = opts.get(name)
        return None if value is None else value.strip().lower() in ("true", "1", "yes")

    allow_http = flag("allow_http")
    virtual = flag("virtual_hosted_style_request")
    timeout = _duration_ms(opts.get("connect_timeout", "")) or None
    s3 = S3Config(
        endpoint_url=opts.get("endpoint_url") or opts.get("endpoint"),
        region_name=opts.get("region") or opts.get("default_region"),
        key_id=opts.get("access_key_id"),
        access_key=opts.get("secret_access_key"),
        session_token=opts.get("session_token") or opts.get("token"),
        # Daft's use_ssl maps back to object_store's allow_http when it reads the Delta log.
        use_ssl=not allow_http if allow_http is not None else True,
        # Path-style unless told otherwise: what MinIO, SeaweedFS and the product's default use.
        force_virtual_addressing=bool(virtual),
        connect_timeout_ms=timeout,
    )
    return IOConfig(s3=s3)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _job_actors() -> dict[str, dict[str, int]]:
    """node id -> {actor class: count} for this job's actors: where Daft placed its work.
    From the GCS's actor table (the state API needs the dashboard, which is off)."""
    import ray
    import ray._private.state as state

    job = ray.get_runtime_context().get_job_id()
    placed: dict[str, dict[str, int]] = {}
    for actor in state.actors().values():
        if actor.get("JobID") != job:
            continue
        node = actor["Address"]["NodeID"]
        name = actor["ActorClassName"]
        placed.setdefault(node, {})
        placed[node][name] = placed[node].get(name, 0) + 1
    return placed


def run(job: dict[str, Any]) -> dict[str, Any]:
    nodes = _connect(job["address"], int(job.get("min_nodes", 1)))
    import daft
    import daft.runners
    import pyarrow
    import ray

    daft.set_runner_ray()
    config = io_config(job.get("storage_options") or {})
    started = time.perf_counter()
    tables = {
        name: daft.read_deltalake(uri, io_config=config) for name, uri in job["tables"].items()
    }
    report: dict[str, Any] = {
        "runner": daft.runners.get_or_infer_runner_type(),  # "ray", never "native"
        "daft": daft.__version__,
        "ray": ray.__version__,
        "pyarrow": pyarrow.__version__,
        "nodes": nodes,
        "register_s": time.perf_counter() - started,
        "queries": {},
    }
    for name, sql in job["queries"].items():
        started = time.perf_counter()
        result = daft.sql(sql, register_globals=False, **tables).to_arrow()
        wall = time.perf_counter() - started
        report["queries"][name] = {
            "wall_s": wall,
            "columns": result.column_names,
            "types": [str(t) for t in result.schema.types],
            "rows": [[_jsonable(v) for v in row.values()] for row in result.to_pylist()],
        }
    report["actors"] = _job_actors()
    return report


def main() -> None:
    # Ray and Daft print to stdout (worker logs, banners); the report owns it alone.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    report = run(json.load(sys.stdin))
    out.write(json.dumps(report) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
