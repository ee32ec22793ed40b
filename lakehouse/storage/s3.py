"""Storage on S3 (MinIO, AWS S3, any S3-compatible server): one bucket per layer."""

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lakehouse.errors import ConfigError, StorageError
from lakehouse.layers import Layer
from lakehouse.settings import Settings, endpoint_problem
from lakehouse.storage.protocol import (
    ObjectInfo,
    ObjectNotFound,
    check_prefix,
    delete_listed,
    split_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# 64 MB parts keep multipart uploads of 100 GB files under S3's 10,000-part cap.
_TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20)


def s3_error(e: Exception, what: str) -> StorageError:
    """Translate a boto error into something a person can act on."""
    if isinstance(e, ClientError):
        code = e.response.get("Error", {}).get("Code", "")
        if code in _NOT_FOUND:
            return ObjectNotFound(f"{what}: not found.")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(
                f"{what}: S3 refused the credentials ({code}). Check RATATOUILLE_S3_ACCESS_KEY "
                "and RATATOUILLE_S3_SECRET_KEY, and that this user may write the bucket.",
                title="S3 access denied",
            )
        if code == "NoSuchBucket":
            return StorageError(
                f"{what}: the bucket does not exist. Create it, or run `ratatouille doctor`.",
                title="S3 bucket missing",
            )
        return StorageError(f"{what}: {code}: {e}", title="S3 error")
    return StorageError(f"{what}: {e}", title="S3 unreachable")


class S3Storage:
    kind = "s3"

    def __init__(self, settings: Settings) -> None:
        problem = endpoint_problem(settings.s3_endpoint)
        if problem:
            raise ConfigError(problem, title="S3 endpoint misconfigured")
        self.settings = settings
        self.buckets = {
            Layer.BRONZE: settings.bucket_bronze,
            Layer.SILVER: settings.bucket_silver,
            Layer.GOLD: settings.bucket_gold,
            Layer.LANDING: settings.bucket_landing,
        }
        scheme = "https" if settings.s3_use_ssl else "http"
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=f"{scheme}://{settings.s3_endpoint}" if settings.s3_endpoint else None,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=secret,
            region_name=settings.s3_region,
            config=Config(
                s3={"addressing_style": "path" if settings.s3_url_style == "path" else "virtual"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def _loc(self, key: str) -> tuple[str, str]:
        layer, rest = split_key(key)
        return self.buckets[layer], rest

    def uri(self, key: str) -> str:
        bucket, rest = self._loc(key)
        return f"s3://{bucket}/{rest}"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ClientError, BotoCoreError) as e:
            raise s3_error(e, what) from e

    def put_file(self, key: str, path: Path, *, move: bool = False, link: bool = False) -> None:
        bucket, rest = self._loc(key)
        self._call(
            f"Upload to {key}", self.client.upload_file, str(path), bucket, rest, Config=_TRANSFER
        )
        if move:
            path.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        bucket, rest = self._loc(key)
        self._call(f"Write {key}", self.client.put_object, Bucket=bucket, Key=rest, Body=data)

    def get_bytes(self, key: str) -> bytes:
        bucket, rest = self._loc(key)
        resp = self._call(f"Read {key}", self.client.get_object, Bucket=bucket, Key=rest)
        return bytes(resp["Body"].read())

    def download(self, key: str, dest: Path) -> None:
        bucket, rest = self._loc(key)
        self._call(
            f"Download {key}", self.client.download_file, bucket, rest, str(dest), Config=_TRANSFER
        )

    def move(self, src: str, dest: str) -> None:
        if not self.exists(src):
            raise ObjectNotFound(f"No object at {src!r}.")
        (src_bucket, src_rest), (bucket, rest) = self._loc(src), self._loc(dest)
        # Managed copy: multipart server-side for big objects, nothing passes through here.
        self._call(
            f"Copy {src} to {dest}",
            self.client.copy,
            {"Bucket": src_bucket, "Key": src_rest},
            bucket,
            rest,
            Config=_TRANSFER,
        )
        self.delete([src])

    def exists(self, key: str) -> bool:
        bucket, rest = self._loc(key)
        try:
            self.client.head_object(Bucket=bucket, Key=rest)
            return True
        except (ClientError, BotoCoreError) as e:
            err = s3_error(e, f"Check {key}")
            if isinstance(err, ObjectNotFound):
                return False
            raise err from e

    def _pages(self, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        layer, rest = check_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            yield from paginator.paginate(Bucket=self.buckets[layer], Prefix=rest, **kwargs)  # type: ignore[misc]
        except (ClientError, BotoCoreError) as e:
            raise s3_error(e, f"List {prefix}") from e

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        layer, _ = check_prefix(prefix)
        for page in self._pages(prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(f"{layer.value}/{obj['Key']}", obj["Size"], obj["LastModified"])

    def list_dirs(self, prefix: str) -> list[str]:
        _, rest = check_prefix(prefix)
        names = [
            cp["Prefix"][len(rest) :].rstrip("/")
            for page in self._pages(prefix, Delimiter="/")
            for cp in page.get("CommonPrefixes", [])
        ]
        return sorted(n for n in names if n)

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._delete_objects(keys)
        # Servers with real folders (SeaweedFS) keep listing emptied ones until their `dir/`
        # marker is deleted, deepest first; deleting a non-empty folder's marker or a missing
        # key is a no-op there and on AWS S3 and MinIO.
        folders: set[str] = set()
        for key in keys:
            parent = key.rpartition("/")[0]
            while parent.count("/") >= 1:
                folders.add(parent)
                parent = parent.rpartition("/")[0]
        for depth in sorted({f.count("/") for f in folders}, reverse=True):
            self._delete_objects([f + "/" for f in folders if f.count("/") == depth])

    def _delete_objects(self, keys: list[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for key in keys:
            bucket, rest = self._loc(key.rstrip("/"))  # a folder marker keeps its slash
            by_bucket.setdefault(bucket, []).append(rest + "/" if key.endswith("/") else rest)
        for bucket, rests in by_bucket.items():
            for i in range(0, len(rests), 1000):  # S3's limit per DeleteObjects call
                batch = [{"Key": k} for k in rests[i : i + 1000]]
                resp = self._call(
                    f"Delete in {bucket}",
                    self.client.delete_objects,
                    Bucket=bucket,
                    Delete={"Objects": batch, "Quiet": True},
                )
                if resp.get("Errors"):
                    first = resp["Errors"][0]
                    raise StorageError(
                        f"Could not delete {first.get('Key')}: {first.get('Message')}",
                        title="S3 delete failed",
                    )

    def delete_prefix(self, prefix: str) -> int:
        return delete_listed(self, prefix)

    # -- multipart uploads that outlive a process (resumable uploads) -------------------------
    def multipart_start(self, key: str) -> str:
        bucket, rest = self._loc(key)
        resp = self._call(
            f"Start an upload to {key}",
            self.client.create_multipart_upload,
            Bucket=bucket,
            Key=rest,
        )
        return str(resp["UploadId"])

    def multipart_part(self, key: str, upload_id: str, number: int, path: Path) -> str:
        """Upload `path` as part `number` (1-based); return its ETag."""
        bucket, rest = self._loc(key)
        with open(path, "rb") as body:
            resp = self._call(
                f"Upload part {number} of {key}",
                self.client.upload_part,
                Bucket=bucket,
                Key=rest,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
            )
        return str(resp["ETag"])

    def multipart_complete(self, key: str, upload_id: str, etags: list[str]) -> None:
        bucket, rest = self._loc(key)
        parts = [{"ETag": tag, "PartNumber": n} for n, tag in enumerate(etags, start=1)]
        self._call(
            f"Finish the upload to {key}",
            self.client.complete_multipart_upload,
            Bucket=bucket,
            Key=rest,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    def multipart_abort(self, key: str, upload_id: str) -> None:
        bucket, rest = self._loc(key)
        try:
            self.client.abort_multipart_upload(Bucket=bucket, Key=rest, UploadId=upload_id)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("NoSuchUpload", *_NOT_FOUND):
                raise s3_error(e, f"Cancel the upload to {key}") from e
