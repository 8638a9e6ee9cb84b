"""Shared object storage, so an API on one host serves audio a worker on another host wrote.

The local outputs directory stays the source of truth for paths and URLs
(``/v1/audio?path=<home>/outputs/<job>/<file>``); with an S3-compatible store configured,
workers also upload each result under ``<prefix>outputs/<job>/<file>`` and the API fetches an
object it does not have into its own outputs directory before serving it. Sources named by
clients travel the same way under ``<prefix>inputs/``. boto3 is synchronous: call these methods
from a thread (``asyncio.to_thread``) or the worker's engine thread.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

from service.config import Settings

log = logging.getLogger(__name__)


class S3Store:
    """An S3-compatible bucket (AWS, MinIO, moto, ...)."""

    def __init__(self, bucket: str, *, endpoint_url: str | None, region: str, prefix: str) -> None:
        import boto3  # the optional "s3" extra

        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def output_key(self, relative: str) -> str:
        return f"{self.prefix}outputs/{relative}"

    def upload(self, local: Path, key: str) -> None:
        self.client.upload_file(str(local), self.bucket, key)

    def download(self, key: str, dest: Path) -> bool:
        """Fetch ``key`` to ``dest`` atomically; False when the object does not exist."""
        from botocore.exceptions import ClientError

        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            self.client.download_file(self.bucket, key, str(partial))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        finally:
            if not dest.exists() and partial.exists():
                os.replace(partial, dest)
            partial.unlink(missing_ok=True)
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                deleted += len(keys)
        return deleted

    def upload_input(self, local: Path) -> str:
        """Store a client's source file for workers elsewhere; returns its key."""
        key = f"{self.prefix}inputs/{uuid.uuid4().hex}{local.suffix}"
        self.upload(local, key)
        return key


def open_object_store(settings: Settings) -> S3Store | None:
    """The configured store, or None when outputs stay on this host's disk."""
    if not settings.s3_bucket:
        return None
    return S3Store(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region,
        prefix=settings.s3_prefix,
    )
