#!/usr/bin/env python3
"""End-to-end interop check: the real `exai` binary driven by the official Python MCP SDK (mcp==2.3.0).

Usage: test_sdk.py [PATH_TO_EXAI]   (default: ${CARGO_TARGET_DIR:-target}/debug/exai)

What it runs, each once per SDK connect mode ("auto" = the SDK default, which probes `server/discover`
at 2026-07-28 and falls back to the `initialize` handshake; "legacy" = `initialize` at 2025-11-25 only):
  stdio   `exai stdio --data-dir TMP` launched by the SDK's stdio transport
  http    `exai serve --host 127.0.0.1 --port 0 --data-dir TMP`, SDK streamable HTTP client on /mcp
  auth    a second `exai serve` with EXAI_HTTP_TOKEN=s3cret: no token -> 401, Bearer token -> tools listed

Against every connection: tools/list names include version/status/health/listmodels and each tool has a
title and an object inputSchema; `version` names exai and a version; `status` returns a non-empty
structuredContent object; `no_such_tool` is an MCP error (-32602) or an isError result; `version` still
works afterwards. Prints one line per check and ends with "python-sdk: N passed, N failed".
Exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent

REQUIRED_TOOLS = ("version", "status", "health", "listmodels")
MODES = ("auto", "legacy")
LISTEN_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
LISTEN_TIMEOUT_SECS = 30.0
SUITE_TIMEOUT_SECS = 90.0
REQUEST_TIMEOUT_SECS = 30.0
TOKEN = "s3cret"


# --------------------------------------------------------------------------------------------- results


class Report:
    """Collects check outcomes; every check prints one PASS/FAIL line as it completes."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.notes: list[str] = []

    def ok(self, name: str, detail: str = "") -> None:
        self.passed += 1
        print(f"  PASS {name}" + (f" — {detail}" if detail else ""), flush=True)

    def fail(self, name: str, detail: str) -> None:
        self.failed.append(f"{name}: {detail}")
        print(f"  FAIL {name} — {detail}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  INFO {text}", flush=True)

    async def check(self, name: str, body: Callable[[], Awaitable[str | None]]) -> bool:
        """Run one check; AssertionError or any exception is a failure with its message."""
        try:
            detail = await body()
        except AssertionError as e:
            self.fail(name, str(e) or "assertion failed")
            return False
        except BaseException as e:  # noqa: BLE001 - report every kind of failure, including ExceptionGroups
            if isinstance(e, KeyboardInterrupt | asyncio.CancelledError):
                raise
            self.fail(name, describe_exc(e))
            return False
        self.ok(name, detail or "")
        return True


def describe_exc(e: BaseException) -> str:
    """One line for an exception, looking inside (nested) ExceptionGroups that anyio may raise."""
    leaves = list(iter_leaf_exceptions(e))
    parts = []
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            parts.append(f"MCPError(code={leaf.code}, message={leaf.message!r}, data={leaf.data!r})")
        else:
            parts.append(f"{type(leaf).__name__}: {leaf}")
    return "; ".join(parts) or f"{type(e).__name__}: {e}"


def iter_leaf_exceptions(e: BaseException):
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            yield from iter_leaf_exceptions(sub)
    else:
        yield e


# --------------------------------------------------------------------------------------------- helpers


def result_blob(result: CallToolResult) -> str:
    """All text content plus the structured content, as one string to search."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    if result.structured_content is not None:
        texts.append(json.dumps(result.structured_content))
    return "\n".join(texts)


def short(text: str, limit: int = 300) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "…"


def tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("      | " + line for line in content[-lines:]) or "      | (empty)"


# --------------------------------------------------------------------------------------------- the shared suite


async def exercise(report: Report, client: Client, label: str) -> None:
    """The checks run against every connected client, whatever the transport or mode."""
    info = client.server_info
    report.note(
        f"{label}: negotiated protocol {client.protocol_version}; "
        f"serverInfo={info.model_dump(exclude_none=True) if info else None}"
    )

    async def list_tools() -> str:
        listed = await client.list_tools()
        names = [t.name for t in listed.tools]
        missing = [n for n in REQUIRED_TOOLS if n not in names]
        assert not missing, f"tools/list lacks {missing}; got {names}"
        no_title = [t.name for t in listed.tools if not t.title]
        assert not no_title, f"tools without a top-level title: {no_title}"
        bad_schema = [
            t.name for t in listed.tools if not isinstance(t.input_schema, dict) or t.input_schema.get("type") != "object"
        ]
        assert not bad_schema, f"tools whose inputSchema is not a JSON object schema (type: object): {bad_schema}"
        return f"{len(names)} tools: {', '.join(names)}"

    async def call_version() -> str:
        result = await client.call_tool("version", {})
        blob = result_blob(result)
        assert not result.is_error, f"version returned isError: {short(blob)}"
        assert "exai" in blob.lower(), f"version result does not name exai: {short(blob)}"
        assert VERSION_RE.search(blob), f"version result has no x.y.z version string: {short(blob)}"
        return short(blob, 160)

    async def call_status() -> str:
        result = await client.call_tool("status", {})
        blob = result_blob(result)
        assert not result.is_error, f"status returned isError: {short(blob)}"
        sc = result.structured_content
        assert isinstance(sc, dict), f"status structuredContent is {type(sc).__name__}, expected an object: {short(blob)}"
        assert sc, "status structuredContent is an empty object"
        return f"structuredContent keys: {sorted(sc)}"

    async def call_unknown() -> str:
        try:
            result = await client.call_tool("no_such_tool", {})
        except MCPError as e:
            assert e.code == INVALID_PARAMS, (
                f"unknown tool raised MCPError code {e.code} ({e.message!r}), expected {INVALID_PARAMS} (invalid params)"
            )
            return f"surfaced as raised MCPError {e.code}: {e.message!r}"
        assert result.is_error, f"unknown tool returned a non-error result: {short(result_blob(result))}"
        return f"surfaced as CallToolResult isError=true: {short(result_blob(result), 160)}"

    await report.check(f"{label}: tools/list has {', '.join(REQUIRED_TOOLS)}, titles, inputSchemas", list_tools)
    await report.check(f"{label}: version", call_version)
    await report.check(f"{label}: status structuredContent", call_status)
    await report.check(f"{label}: unknown tool is an MCP error", call_unknown)
    await report.check(f"{label}: version after the error", call_version)


async def run_suite(report: Report, label: str, connect: Callable[[], Client]) -> None:
    """Connect (timed), run the suite, disconnect; a connect failure is one failed check."""
    print(f"[{label}]", flush=True)
    started = time.monotonic()
    try:
        async with asyncio.timeout(SUITE_TIMEOUT_SECS):
            async with connect() as client:
                report.ok(f"{label}: connect", f"{time.monotonic() - started:.2f}s")
                await exercise(report, client, label)
    except TimeoutError:
        report.fail(label, f"suite did not finish within {SUITE_TIMEOUT_SECS:.0f}s")
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt | asyncio.CancelledError):
            raise
        report.fail(f"{label}: connect/session", describe_exc(e))
        if os.environ.get("EXAI_PY_SDK_TRACEBACK"):
            traceback.print_exception(e)


# --------------------------------------------------------------------------------------------- stdio


async def stdio_suites(report: Report, binary: str, workdir: Path) -> None:
    for mode in MODES:
        data_dir = workdir / f"stdio-{mode}"
        data_dir.mkdir()
        errlog_path = workdir / f"stdio-{mode}.stderr.log"
        with errlog_path.open("w") as errlog:
            params = StdioServerParameters(command=binary, args=["stdio", "--data-dir", str(data_dir)])

            def connect(params: StdioServerParameters = params, errlog=errlog, mode: str = mode) -> Client:
                return Client(
                    stdio_client(params, errlog=errlog), mode=mode, read_timeout_seconds=REQUEST_TIMEOUT_SECS
                )

            failures_before = len(report.failed)
            await run_suite(report, f"stdio/{mode}", connect)
        if len(report.failed) > failures_before:
            print(f"    exai stdio stderr (tail):\n{tail(errlog_path)}", flush=True)


# --------------------------------------------------------------------------------------------- HTTP


class ServeProcess:
    """`exai serve` on port 0: parses the port from its stdout, keeps draining stdout, kills it on exit."""

    def __init__(self, binary: str, data_dir: Path, log_dir: Path, name: str, token: str | None) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.token = token
        self.proc: asyncio.subprocess.Process | None = None
        self.port: int | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "EXAI_HTTP_TOKEN"}
        if self.token is not None:
            env["EXAI_HTTP_TOKEN"] = self.token
        # A free WebSocket port too: the default 8079 may belong to a daemon already running on this machine.
        env["EXAI_WS_PORT"] = "0"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = self.stderr_path.open("w")
        self._stdout_log = self.stdout_path.open("w")
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        port_found: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._drain = asyncio.create_task(self._read_stdout(port_found))
        try:
            self.port = await asyncio.wait_for(port_found, LISTEN_TIMEOUT_SECS)
        except TimeoutError:
            raise AssertionError(
                f"no 'listening on http://127.0.0.1:PORT' line on stdout within {LISTEN_TIMEOUT_SECS:.0f}s"
                + self._where_it_went()
            ) from None
        except EOFError:
            await asyncio.sleep(0.2)
            raise AssertionError(
                f"exai serve closed stdout (exit code {self.proc.returncode}) before printing "
                f"'listening on http://127.0.0.1:PORT'" + self._where_it_went()
            ) from None

    def _where_it_went(self) -> str:
        self._stderr.flush()
        stderr = self.stderr_path.read_text(errors="replace")
        hint = ""
        if LISTEN_RE.search(stderr):
            hint = " (the line WAS printed, but on stderr, not stdout)"
        return f"{hint}\n    stdout:\n{tail(self.stdout_path)}\n    stderr:\n{tail(self.stderr_path)}"

    async def _read_stdout(self, port_found: asyncio.Future[int]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                if not port_found.done():
                    port_found.set_exception(EOFError())
                return
            text = line.decode(errors="replace")
            self._stdout_log.write(text)
            self._stdout_log.flush()
            if not port_found.done() and (m := LISTEN_RE.search(text)):
                port_found.set_result(int(m.group(1)))

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            try:
                await self._drain
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - teardown only
                pass
        for handle in ("_stderr", "_stdout_log"):
            if (f := getattr(self, handle, None)) is not None:
                f.close()


@asynccontextmanager
async def serving(binary: str, workdir: Path, name: str, token: str | None = None):
    server = ServeProcess(binary, workdir / f"{name}-data", workdir, name, token)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


def http_client(url: str, headers: dict[str, str] | None = None, mode: str = "auto") -> Client:
    """An SDK client over streamable HTTP; extra HTTP headers go on an httpx2.AsyncClient handed to the transport."""
    http = httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30.0, read=300.0))
    transport = _owning(streamable_http_client(url, http_client=http), http)
    return Client(transport, mode=mode, read_timeout_seconds=REQUEST_TIMEOUT_SECS)


@asynccontextmanager
async def _owning(transport, http: httpx2.AsyncClient):
    """The transport does not close an http_client it was handed; close it after the transport."""
    async with http:
        async with transport as streams:
            yield streams


def raw_post(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """One plain HTTP POST of an initialize request (stdlib only), returning status, headers and body."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "exai-interop-raw", "version": "0"},
            },
        }
    ).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read(2000).decode(errors="replace")


async def http_suites(report: Report, binary: str, workdir: Path) -> None:
    print("[http: exai serve]", flush=True)
    try:
        async with serving(binary, workdir, "http") as server:
            report.ok("http: exai serve printed its listening line", f"port {server.port}")
            for mode in MODES:

                def connect(mode: str = mode) -> Client:
                    return http_client(server.url, mode=mode)

                await run_suite(report, f"http/{mode}", connect)
            if any(f.startswith("http/") for f in report.failed):
                print(f"    exai serve stderr (tail):\n{tail(server.stderr_path)}", flush=True)
    except AssertionError as e:
        report.fail("http: exai serve start", str(e))


async def auth_suite(report: Report, binary: str, workdir: Path) -> None:
    print("[auth: exai serve with EXAI_HTTP_TOKEN]", flush=True)
    try:
        async with serving(binary, workdir, "auth", token=TOKEN) as server:
            report.ok("auth: exai serve printed its listening line", f"port {server.port}")

            async def raw_no_token() -> str:
                status, headers, body = await asyncio.to_thread(raw_post, server.url, {})
                assert status == 401, f"POST /mcp without a token answered {status}, expected 401: {short(body)}"
                www = {k.lower(): v for k, v in headers.items()}.get("www-authenticate")
                return f"401, WWW-Authenticate: {www!r}, body: {short(body, 120)!r}"

            async def raw_wrong_token() -> str:
                status, _, body = await asyncio.to_thread(raw_post, server.url, {"Authorization": "Bearer wrong"})
                assert status == 401, f"POST /mcp with a wrong token answered {status}, expected 401: {short(body)}"
                return "401"

            async def sdk_no_token() -> str:
                try:
                    async with asyncio.timeout(SUITE_TIMEOUT_SECS):
                        async with http_client(server.url) as client:
                            tools = await client.list_tools()
                except BaseException as e:  # noqa: BLE001
                    if isinstance(e, KeyboardInterrupt | asyncio.CancelledError):
                        raise
                    return f"connect refused as expected: {describe_exc(e)}"
                raise AssertionError(f"SDK connected and listed {len(tools.tools)} tools without a token")

            async def sdk_with_token() -> str:
                async with asyncio.timeout(SUITE_TIMEOUT_SECS):
                    async with http_client(server.url, {"Authorization": f"Bearer {TOKEN}"}) as client:
                        listed = await client.list_tools()
                        names = [t.name for t in listed.tools]
                        missing = [n for n in REQUIRED_TOOLS if n not in names]
                        assert not missing, f"tools/list lacks {missing}; got {names}"
                        version = await client.call_tool("version", {})
                        assert not version.is_error, f"version with token returned isError: {short(result_blob(version))}"
                        return f"protocol {client.protocol_version}, {len(names)} tools"

            await report.check("auth: raw POST without token -> 401", raw_no_token)
            await report.check("auth: raw POST with wrong token -> 401", raw_wrong_token)
            await report.check("auth: SDK connect without token fails", sdk_no_token)
            await report.check("auth: SDK with 'Authorization: Bearer s3cret' lists tools", sdk_with_token)
            if any(f.startswith("auth") for f in report.failed):
                print(f"    exai serve (token) stderr (tail):\n{tail(server.stderr_path)}", flush=True)
    except AssertionError as e:
        report.fail("auth: exai serve start", str(e))


# --------------------------------------------------------------------------------------------- main


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "exai")
    parser.add_argument("binary", nargs="?", default=default_binary, help=f"exai binary (default: {default_binary})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data/log directory")
    args = parser.parse_args()

    binary = shutil.which(args.binary) if os.sep not in args.binary else args.binary
    if not binary or not os.access(binary, os.X_OK):
        print(f"python-sdk: exai binary not found or not executable: {args.binary}", file=sys.stderr)
        return 2
    binary = os.path.abspath(binary)

    print(f"python-sdk: mcp {importlib.metadata.version('mcp')} against {binary}", flush=True)
    report = Report()
    workdir = Path(tempfile.mkdtemp(prefix="exai-py-sdk-"))
    try:
        await stdio_suites(report, binary, workdir)
        await http_suites(report, binary, workdir)
        await auth_suite(report, binary, workdir)
    finally:
        if args.keep or report.failed:
            print(f"python-sdk: logs and data kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if report.failed:
        print("python-sdk: failures:")
        for failure in report.failed:
            print(f"  - {failure.splitlines()[0]}")
    print(f"python-sdk: {report.passed} passed, {len(report.failed)} failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
