"""Capture files handed to the running server: `flowscope ingest` while `flowscope serve` holds the
data directory.

The CLI posts the files' absolute paths to `POST /local/ingest` with the runtime file's credential
(flowscope.runtime: the data directory's owner, on this machine). The server checks each path
(absolute, resolved, a readable regular capture file), meters the files one after another as its
own capture sources (so they show in get_interfaces and their flows reach every hook), and
streams progress as JSON lines, then the same summary an offline ingest prints.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from typing import AsyncIterator, Callable

import anyio
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from flowscope.auth import local_from_header
from flowscope.capture.ingest import IngestError, IngestSummary, check_readable

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5


class IngestRequest(BaseModel):
    files: list[str] = Field(min_length=1, max_length=10_000)
    workers: int | None = Field(None, ge=1, le=1024)
    idle_timeout: int | None = Field(None, ge=1)
    active_timeout: int | None = Field(None, ge=1)


def confined(path: str) -> str:
    """The real path of a capture file the caller named, or IngestError saying why not."""
    if "\x00" in path or not os.path.isabs(path):
        raise IngestError(f"{path!r}: give an absolute path")
    real = os.path.realpath(path)
    check_readable(real)  # a regular file the server can read, with a capture's magic
    return real


# --- the server's side -------------------------------------------------------------------------
async def endpoint(app, request: Request) -> Response:
    client, server = request.scope.get("client"), request.scope.get("server")
    if not app.auth.is_local_owner(local_from_header(request.headers.get("authorization")),
                                   client[0] if client else None, server[0] if server else None):
        return JSONResponse({"error": "only the data directory's owner, on this machine, may hand files over "
                                      "(flowscope ingest does it for you)"}, status_code=401)
    try:
        job = IngestRequest.model_validate(await request.json())
        files = [confined(p) for p in job.files]
    except (ValueError, ValidationError, IngestError) as exc:
        return JSONResponse({"error": str(exc)[:2000]}, status_code=400)
    log.info("ingesting %d file(s) handed over by the local owner", len(files))
    return StreamingResponse(_run(app, files, job), media_type="application/x-ndjson")


async def _run(app, files: list[str], job: IngestRequest) -> AsyncIterator[bytes]:
    summary = IngestSummary()
    started = time.monotonic()
    for path in files:
        src = app.sources.start_pcap(path, workers=job.workers, idle_timeout=job.idle_timeout,
                                     active_timeout=job.active_timeout)
        while src.state in ("starting", "running"):
            yield _line(file=path, flows=summary.flows + src.flows, packets=summary.packets + src.flow_packets)
            await anyio.sleep(PROGRESS_EVERY_S)
        summary.flows += src.flows
        summary.packets += src.flow_packets
        summary.bytes += src.flow_bytes
        summary.frames += src.packets
        summary.frame_bytes += src.bytes
        if src.state == "done":
            summary.files += 1
        else:
            summary.errors.append(src.error or f"{path}: failed")
        yield _line(file=path, flows=summary.flows, packets=summary.packets)
    await anyio.to_thread.run_sync(app.writer.flush)  # stored, hence queryable, before the summary
    summary.elapsed_s = time.monotonic() - started
    yield _line(summary=asdict(summary))


def _line(**fields) -> bytes:
    return (json.dumps(fields) + "\n").encode()


# --- the CLI's side ----------------------------------------------------------------------------
def hand_off(runtime, files: list[str], *, workers: int | None = None, idle_timeout: int | None = None,
             active_timeout: int | None = None,
             progress: Callable[[str, IngestSummary], None] | None = None) -> IngestSummary:
    """Have the running server ingest `files`; its progress goes to `progress(path, summary)`."""
    import httpx

    body = {"files": [os.path.abspath(f) for f in files], "workers": workers, "idle_timeout": idle_timeout,
            "active_timeout": active_timeout}
    headers = {"Authorization": f"Local {runtime.secret}"}
    seen = IngestSummary()
    timeout = httpx.Timeout(30, read=300)
    with httpx.stream("POST", runtime.ingest_url, json=body, headers=headers, timeout=timeout,
                      verify=runtime.verify()) as response:
        if response.status_code != 200:
            response.read()
            raise IngestError(f"the running server refused the files: {_error_of(response)}")
        for raw in response.iter_lines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            if "summary" in line:
                return IngestSummary(**line["summary"])
            seen.flows, seen.packets = line["flows"], line["packets"]
            if progress:
                progress(line["file"], seen)
    raise IngestError("the running server stopped before it finished; see its log")


def _error_of(response) -> str:
    try:
        return response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
