"""The test S3 server is real: it stores objects and enforces credentials."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devtools.s3server import REGION, S3Server

pytestmark = pytest.mark.s3


def _error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_admin_can_write_read_and_list(s3_server: S3Server, s3_buckets: dict[str, str]) -> None:
    s3, bucket = s3_server.client(), s3_buckets["bronze"]
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/b.txt"]


def test_readonly_identity_can_read_but_not_write(
    s3_server: S3Server, s3_buckets: dict[str, str]
) -> None:
    bucket = s3_buckets["silver"]
    s3_server.client().put_object(Bucket=bucket, Key="k", Body=b"v")
    reader = s3_server.client(readonly=True)
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    with pytest.raises(ClientError) as exc:
        reader.put_object(Bucket=bucket, Key="k2", Body=b"nope")
    assert _error_code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        reader.delete_object(Bucket=bucket, Key="k")
    assert _error_code(exc) == "AccessDenied"


def test_wrong_secret_is_refused(s3_server: S3Server, s3_buckets: dict[str, str]) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        region_name=REGION,
        aws_access_key_id=s3_server.admin_key,
        aws_secret_access_key="wrong-" + s3_server.admin_secret,
        config=Config(s3={"addressing_style": "path"}),
    )
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=s3_buckets["gold"])
    assert _error_code(exc) == "SignatureDoesNotMatch"


def test_env_points_at_the_server(s3_env: dict[str, object], s3_server: S3Server) -> None:
    assert s3_env["s3_endpoint"] == s3_server.endpoint
    assert s3_server.url == f"http://{s3_server.endpoint}"
    buckets = {s3_env[f"bucket_{layer}"] for layer in ("bronze", "silver", "gold", "landing")}
    existing = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert buckets <= existing


def test_conditional_put_refuses_a_second_writer(
    s3_server: S3Server, s3_buckets: dict[str, str]
) -> None:
    """Delta commits on S3 rely on it: `If-None-Match: *` creates a key only once."""
    client, bucket = s3_server.client(), s3_buckets["gold"]
    client.put_object(Bucket=bucket, Key="t/_delta_log/0.json", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="t/_delta_log/0.json", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket=bucket, Key="t/_delta_log/0.json")["Body"].read() == b"first"
