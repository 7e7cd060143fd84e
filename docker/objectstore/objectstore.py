"""moto's S3 server with the platform's bucket made at start (an emulator: see the Dockerfile beside this file).

python objectstore.py serve    serve on :5000 and create OBJECTSTORE_BUCKET (default mammo-media)
python objectstore.py check    the health check: the bucket answers
python objectstore.py list     the keys in the bucket, one a line
"""

from __future__ import annotations

import os
import signal
import sys
import threading

PORT = 5000
BUCKET = os.environ.get("OBJECTSTORE_BUCKET", "mammo-media")


def client():
    import boto3

    # moto takes any credentials; these never reach a real store.
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{PORT}", region_name="us-east-1",
        aws_access_key_id="objectstore", aws_secret_access_key="objectstore",
    )  # fmt: skip


def serve() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="0.0.0.0", port=PORT)
    server.start()
    client().create_bucket(Bucket=BUCKET)
    print(f"S3 emulator (moto) on :{PORT} with bucket {BUCKET}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


def check() -> None:
    client().head_bucket(Bucket=BUCKET)
    print(f"bucket {BUCKET} answers")


def listing() -> None:
    for page in client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            print(obj["Key"])


if __name__ == "__main__":
    {"serve": serve, "check": check, "list": listing}[sys.argv[1] if len(sys.argv) > 1 else "serve"]()
