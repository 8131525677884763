"""The record of samples an encoding could not cache: `dropped.parquet` beside the latents (filename, key, reason),
its stable reasons, and the decode failures of earlier runs that are not tried again."""

import logging
import re
from collections.abc import Callable
from pathlib import Path

import PIL
import pyarrow as pa

from hf_assets.cache.tables import load_manifest, load_table, save_table
from hf_assets.encode.images import CorruptImage

DROPPED = "dropped"  # dropped.parquet beside the latents: filename, key (null when unreadable), reason
DECODE_FAILURE = "corrupt_image"  # reason kind of an image that does not decode (or fit): not retried for its key
RETRYABLE_FAILURE = "encode_error"  # any other error while loading an image: retried next run
REASON_CHARS = 200
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
DECODER = f"Pillow {PIL.__version__}"  # recorded decode failures are retried once another decoder is installed


def failure_reason(
    error: BaseException, corrupt: type[Exception] = CorruptImage, decode_failure: str = DECODE_FAILURE
) -> str:
    """A drop reason that is the same on every run: kind (`decode_failure` for a `corrupt` error, not retried for
    its key; else retried), exception type, first line, no memory addresses."""
    kind = decode_failure if isinstance(error, corrupt) else RETRYABLE_FAILURE
    message = (_ADDRESS.sub("", str(error)).splitlines() or [""])[0][:REASON_CHARS]
    return f"{kind}: {type(error).__name__}: {message}"


def earlier_decode_failures(
    directory: Path,
    log: Callable[[str], None] = logging.getLogger(__name__).info,
    decoder: str | None = None,
    decode_failure: str = DECODE_FAILURE,
) -> dict[str, str]:
    """cache key -> reason of the samples an earlier run of this cache dropped because their image (or clip:
    `decoder` and `decode_failure` of the video encoder) did not decode with this decoder (default: Pillow's)."""
    try:
        if load_manifest(Path(directory), DROPPED).get("decoder") != (decoder or DECODER):  # absent, or another version
            return {}
        table = load_table(Path(directory), DROPPED)
        if "key" not in table.column_names:  # written before keys were recorded: nothing to skip
            return {}
        keys, reasons = table.column("key").to_pylist(), table.column("reason").to_pylist()
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - an unreadable record only means those images are tried again
        log(f"ignoring unreadable {DROPPED}.parquet in {directory}: {exc}")
        return {}
    return {
        key: reason for key, reason in zip(keys, reasons) if key and reason and reason.startswith(decode_failure + ":")
    }


def save_drops(
    directory: Path,
    dropped: dict[str, str],
    keys: dict[str, str | None],
    what: str,
    decoder: str | None = None,
    decode_failure: str = DECODE_FAILURE,
) -> None:
    """Write `dropped.parquet`: each dropped file name with its cache key (None when its bytes were never read) and
    reason; `what` names the samples ("images"), `decoder` the decoder whose failures the next run skips."""
    names = list(dropped)
    table = pa.table(
        {
            "filename": pa.array(names, pa.string()),
            "key": pa.array([keys.get(name) for name in names], pa.string()),
            "reason": pa.array([dropped[name] for name in names], pa.string()),
        }
    )
    meta = {
        "reason": f"{what} of the bucket table without a latent",
        "key": f"cache key; a '{decode_failure}' key is not retried until its bytes, settings or decoder change",
        "decoder": decoder or DECODER,
    }
    save_table(Path(directory), DROPPED, table, meta)
