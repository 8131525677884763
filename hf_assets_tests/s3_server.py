"""A real S3 server on 127.0.0.1 for the tests (moto's server mode, answering over HTTP as AWS would), and a bucket
of real images with caption files in it."""

from dataclasses import dataclass

import pytest

from hf_assets_tests.imagegen import corrupt_bytes, encode_image

KEY_ID, SECRET = "AKIDTESTKEY", "s3cr3t-never-logged"


@dataclass
class S3Server:
    endpoint: str

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=body)

    def entry(self, backend_id: str, bucket: str, prefix: str, **settings) -> dict:
        """A SimpleTuner `type: "aws"` entry for this server, credentials included."""
        return {
            "id": backend_id,
            "type": "aws",
            "aws_bucket_name": bucket,
            "aws_data_prefix": prefix,
            "aws_endpoint_url": self.endpoint,
            "aws_region_name": "us-east-1",
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            **settings,
        }


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free port of 127.0.0.1, for one test module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


# (name under the prefix, width, height, format, caption file text or None)
PICTURES = [
    ("cats/tabby_on_a_sofa.jpg", 320, 240, "JPEG", b"a tabby cat on a sofa\na cat indoors\n"),
    ("cats/black_cat.png", 200, 300, "PNG", b"a black cat"),
    ("dogs/pug.webp", 256, 256, "WEBP", None),
    ("dogs/corgi.jpg", 400, 225, "JPEG", "un corgi \u00e0 la plage".encode("cp1252")),
    ("broken.jpg", 0, 0, "JPEG", b"a broken picture"),
]


def fill_bucket(server: S3Server, bucket: str, prefix: str = "train/") -> list[str]:
    """Upload PICTURES (and a file that is no image) under `prefix`; returns the image names."""
    server.client().create_bucket(Bucket=bucket)
    for i, (name, width, height, fmt, caption) in enumerate(PICTURES):
        body = corrupt_bytes(i) if width == 0 else encode_image(width, height, fmt, seed=i)
        server.put(bucket, prefix + name, body)
        if caption is not None:
            server.put(bucket, prefix + name.rsplit(".", 1)[0] + ".txt", caption)
    server.put(bucket, prefix + "README.md", b"not an image")
    server.put(bucket, "elsewhere/outside.jpg", encode_image(64, 64, "JPEG", seed=9))
    return [name for name, *_ in PICTURES]
