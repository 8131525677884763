"""Check a dataloader config from the command line: exits 1 on any problem of any backend (CI), 0 otherwise.

    python -m hf_assets.config.check [path/to/dataloader.json]   # default: HF_ASSETS_DATALOADER_CONFIG or the demo

The code location loads a config with broken backends (they show as partitions that fail at once); this command
is the strict gate: it lists every problem and every key accepted but not used.
"""

import argparse
import sys

from hf_assets.config.errors import ConfigError
from hf_assets.config.loader import config_path_from_env, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hf_assets.config.check", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="the dataloader JSON (default: $HF_ASSETS_DATALOADER_CONFIG)")
    args = parser.parse_args(argv)
    path = args.path or config_path_from_env()
    try:
        config = load_config(path, strict=False)
    except ConfigError as exc:  # the file itself cannot be read as a list of entries
        print(exc, file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if config.broken:
        print(ConfigError(config.path, config.problems), file=sys.stderr)
        print(f"broken backends: {', '.join(config.broken)}", file=sys.stderr)
        return 1
    print(f"{config.path}: {len(config.backends)} backend(s) load: {', '.join(config.backend_ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
