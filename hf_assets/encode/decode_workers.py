"""How many threads decode images for one encoding process: the cores it may use, shared among the devices that
encode at once on its machine (`hf_assets.cores.usable_cores` counts the cores)."""


def default_decode_workers(cores: int, devices: int) -> int:
    """Decode threads for one process: its share of `cores` when `devices` processes (one per GPU) encode at once
    on the machine, less the one core its own thread needs to drive the device; at least 1."""
    share = cores // max(1, devices)
    return max(1, share - 1)


def prefetch_depth(batch_size: int, workers: int) -> int:
    """Images decoded ahead of the device: two batches, plus one in the hands of each worker, so that the next
    batch is ready while one is encoded and every worker always has an image to decode."""
    return 2 * max(1, batch_size) + max(0, workers)
