"""Where attachment bytes live: a folder on the local disk by default, or an S3-compatible bucket that
several hosts share (`ATTACHMENTS_URL=s3://bucket/prefix`). Both stream: nothing is held whole in memory."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

CHUNK = 64 * 1024


class Storage(Protocol):
    def put(self, key: str, source: BinaryIO) -> None:
        """Store the rest of `source` under `key`, replacing whatever was there."""

    def stream(self, key: str) -> Iterator[bytes]:
        """The stored bytes in chunks; FileNotFoundError when there are none."""

    def delete(self, key: str) -> None:
        """Forget `key`; a missing key is not an error."""


class DiskStorage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"{key!r} is outside the storage folder")
        return path

    def put(self, key: str, source: BinaryIO) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its final name and renamed: a reader never sees half a file.
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            os.replace(partial, path)
        except BaseException:
            os.unlink(partial)
            raise

    def stream(self, key: str) -> Iterator[bytes]:
        handle = self._path(key).open("rb")

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return chunks()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # The key's folder goes too once empty.
        with contextlib.suppress(OSError):
            path.parent.rmdir()


class S3Storage:
    """Credentials, region and endpoint come from boto3's standard settings (AWS_ACCESS_KEY_ID,
    AWS_REGION, AWS_ENDPOINT_URL for an S3-compatible service, …) unless given."""

    def __init__(self, bucket: str, prefix: str = "", **client_options):
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = boto3.client("s3", **client_options)

    def put(self, key: str, source: BinaryIO) -> None:
        # upload_fileobj sends big files in parts, a bounded buffer at a time.
        self.client.upload_fileobj(source, self.bucket, self.prefix + key)

    def stream(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        except self.client.exceptions.NoSuchKey as missing:
            raise FileNotFoundError(key) from missing

        def chunks() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK)

        return chunks()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)


def from_url(url: str | None, instance: Path) -> Storage:
    """`s3://bucket/prefix`, `file:///path`, or nothing: the instance folder's `attachments/`."""
    if not url:
        return DiskStorage(Path(instance) / "attachments")
    parts = urlsplit(url)
    if parts.scheme == "s3" and parts.netloc:
        return S3Storage(parts.netloc, parts.path)
    if parts.scheme == "file" and parts.path:
        return DiskStorage(Path(parts.path))
    raise ValueError(f"ATTACHMENTS_URL must be s3://bucket/prefix or file:///path, not {url!r}")
