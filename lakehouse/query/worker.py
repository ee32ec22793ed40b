"""A query worker: `python -m lakehouse.query.worker`, driven over its stdin/stdout by the engine.

Each message is a JSON header frame, optionally followed by one Arrow IPC stream frame; a frame
is an 8-byte big-endian length and its bytes. The worker exits when its stdin closes or its
parent goes away, so a crashed app leaves no workers behind.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.query.sandbox import Sandbox
    from lakehouse.settings import Settings


_LEN = struct.Struct(">Q")


def _retire(out: IO[bytes], settings: Settings) -> None:
    """Answer an allocation the data-segment limit refused; `retire` asks the engine for a
    fresh worker, since an allocator that reserved up to the limit may keep failing."""
    from lakehouse.query.limits import memory_ceiling_mb

    msg = (
        "The query needed more memory than a query worker may have "
        f"({memory_ceiling_mb(settings):,} MB, RATATOUILLE_QUERY_WORKER_MAX_MB), e.g. for one "
        "huge string or list. Filter or aggregate earlier, or raise the setting."
    )
    write_message(out, {"ok": False, "title": "Out of memory", "msg": msg, "retire": True})


def write_message(
    out: IO[bytes], header: dict[str, Any], body: bytes | memoryview | None = None
) -> None:
    data = json.dumps({**header, "body": body is not None}).encode()
    out.write(_LEN.pack(len(data)) + data)
    if body is not None:  # written as it is: a copy would double the worker's largest buffer
        out.write(_LEN.pack(len(body)))
        out.write(body)
    out.flush()


def read_frame(inp: IO[bytes]) -> bytes | None:
    head = inp.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    data = inp.read(n)
    if len(data) < n:
        return None
    return data


def arrow_bytes(table: pa.Table) -> memoryview:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return memoryview(sink.getvalue())


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _tables(req: dict[str, Any]) -> list[tuple[str, str]] | None:
    tables = req.get("tables")
    return None if tables is None else [(layer, name) for layer, name in tables]


def _answer(out: IO[bytes], sandbox: Sandbox, req: dict[str, Any]) -> None:
    """Run a query and send its rows; they (and any batch a cut result slices) are freed on
    return, not held while the worker waits for its next query."""
    rows = sandbox.run(
        req["sql"],
        req["max_rows"],
        req["time_limit_s"],
        _tables(req),
        max_bytes=req.get("max_bytes"),
    )
    header = {
        "ok": True,
        "columns": rows.columns,
        "truncated": rows.truncated,
        "truncated_reason": rows.truncated_reason,
        "elapsed_s": rows.elapsed_s,
    }
    write_message(out, header, arrow_bytes(rows.table))


def main() -> None:
    # The protocol owns the real stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    from lakehouse.errors import LakehouseError
    from lakehouse.query.limits import limit_data_segment
    from lakehouse.query.sandbox import Sandbox
    from lakehouse.settings import Settings

    first = read_frame(inp)
    if first is None:
        return
    try:
        settings = Settings(**json.loads(first)["settings"])
        sandbox = Sandbox(settings)
        arrow_bytes(sandbox.con.execute("SELECT 1").to_arrow_table())  # allocators set up
        limit_data_segment(settings)
    except LakehouseError as e:
        write_message(out, {"ok": False, "title": e.title, "msg": e.msg})
        return
    except Exception as e:  # noqa: BLE001 -- a worker that cannot start must say why, not just vanish
        write_message(out, {"ok": False, "title": "Query worker failed to start", "msg": str(e)})
        return
    write_message(out, {"ok": True, "pid": os.getpid()})
    while (frame := read_frame(inp)) is not None:
        req = json.loads(frame)
        try:
            if req["op"] == "query":
                _answer(out, sandbox, req)
            elif req["op"] == "export":
                done = sandbox.export(
                    req["sql"], Path(req["path"]), req["format"], req["time_limit_s"], _tables(req)
                )
                write_message(
                    out,
                    {
                        "ok": True,
                        "rows": done.rows,
                        "bytes": done.bytes,
                        "elapsed_s": done.elapsed_s,
                    },
                )
            else:
                write_message(out, {"ok": False, "title": "Bad request", "msg": str(req["op"])})
        except LakehouseError as e:
            if "bad allocation" not in str(e.__cause__):
                write_message(out, {"ok": False, "title": e.title, "msg": e.msg})
                continue
            _retire(out, settings)  # refused by the data-segment limit
            break
        except MemoryError:  # the same limit, met by Python or Arrow code
            _retire(out, settings)
            break
        except Exception as e:  # noqa: BLE001 -- keep serving: one bad query must not take the worker down
            write_message(out, {"ok": False, "title": "The query failed", "msg": str(e)})
    sandbox.close()


if __name__ == "__main__":
    main()
