"""Realistic test images (real JPEG/PNG/WebP bytes, EXIF orientation, corrupt rows) from the one generator.

The generator is `examples/demo_images.py`, shared by the demo, the tests and the benchmarks; tests import these
names from here.
"""

from examples.demo_images import FORMATS, corrupt_bytes, encode_image, photo, pixels, truncated_jpeg

__all__ = ["FORMATS", "corrupt_bytes", "encode_image", "photo", "pixels", "truncated_jpeg"]
