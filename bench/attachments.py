"""Attachment uploads against the real server (gunicorn, gevent worker, SQLite, disk storage).

    .venv/bin/python bench/attachments.py [--runs 5]

Prints, for PDFs of 1, 10 and 30 MB:
  - upload throughput: MB/s from the first byte sent to the 201, median of --runs uploads;
  - the worker's memory: how much its peak resident set (VmHWM) grew during one upload, on a fresh
    server warmed with small uploads. An upload streams to a temporary file and then to storage in
    64 KiB chunks, so this must not grow with the file size.
and the time to upload and process a 12-megapixel photo (decode, rotate, re-encode, thumbnail).
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from app.extensions import db  # noqa: E402
from app.models import Workstream  # noqa: E402
from tests.support import HOST_ORIGIN, ChatServer, migrated_app, seed  # noqa: E402

MB = 1024 * 1024
SIZES = (1, 10, 30)


def pdf_of(size: int) -> bytes:
    """Sniffed as a PDF by its header; random bytes after it, so nothing compresses along the way."""
    head = b"%PDF-1.4\n"
    return head + os.urandom(size - len(head))


def photo() -> bytes:
    image = Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


class Uploader:
    def __init__(self, instance: Path):
        app = migrated_app(instance)
        self.world = seed(app, [HOST_ORIGIN])
        with app.app_context():
            workstream = db.session.get(Workstream, self.world.workstream_id)
            workstream.attachment_limits = json.dumps({"max_bytes": 64 * MB})
            db.session.commit()
            db.engine.dispose()
        self.server = ChatServer(instance).start()

    def upload(self, data: bytes, name: str) -> float:
        request = urllib.request.Request(
            f"{self.server.url}/api/widget/workstreams/{self.world.workstream_id}/attachments?name={name}",
            data=data,
            headers={
                "Authorization": f"Bearer {self.world.token('bench')}",
                "Origin": HOST_ORIGIN,
                "Content-Type": "application/octet-stream",
            },
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 201, response.status
            response.read()
        return time.perf_counter() - started

    def worker_pid(self) -> int:
        master = self.server.proc.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        # `flask serve` runs gunicorn in its own process; the worker is the master's child.
        for pid in children:
            grandchildren = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if grandchildren:
                return int(grandchildren[0])
        return int(children[0])

    def peak_kib(self) -> int:
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        self.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'file':>8}  {'MB/s (median)':>14}  {'worker peak RSS growth':>24}")
    for size in SIZES:
        data = pdf_of(size * MB)
        with tempfile.TemporaryDirectory() as folder:
            uploader = Uploader(Path(folder))
            try:
                for _ in range(3):
                    uploader.upload(pdf_of(64 * 1024), "warm.pdf")
                before = uploader.peak_kib()
                first = uploader.upload(data, "file.pdf")
                growth = uploader.peak_kib() - before
                times = [first] + [uploader.upload(data, "file.pdf") for _ in range(args.runs - 1)]
            finally:
                uploader.stop()
        print(f"{size:>5} MB  {size / statistics.median(times):>14.1f}  {growth:>20,} KiB")
    image = photo()
    with tempfile.TemporaryDirectory() as folder:
        uploader = Uploader(Path(folder))
        try:
            seconds = statistics.median(uploader.upload(image, "photo.jpg") for _ in range(3))
        finally:
            uploader.stop()
    print(f"12-megapixel JPEG ({len(image) / MB:.1f} MB): {seconds * 1000:.0f} ms to upload, re-encode and thumbnail")


if __name__ == "__main__":
    main()
