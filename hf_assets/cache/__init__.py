"""On-disk caches: atomic writes, content/settings hashes, safetensors shards, Parquet manifests, lazy readers."""
