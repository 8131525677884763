"""Small values passed between the steps of one encoding asset (plan, shard reports), kept on the shared cache."""

import json
import socket

import dagster as dg

from hf_assets.cache.atomic import write_json_atomic
from hf_assets.resources.dataloader_config import cached_config

STEPS_DIR = "steps"  # <metadata dir>/steps/<run id>/<step key>/<output>[.<mapping key>].json


class StepValueIOManager(dg.ConfigurableIOManager):
    """JSON values under the backend's cache dir, so that every executor (in-process, multiprocess, Dask, Kubernetes)
    and a re-execution from failure read the outputs earlier steps wrote, wherever those ran."""

    config_path: str

    def _path(self, context, output: dg.OutputContext):
        """The file of `output`; the backend comes from `context`, the step running now (same partition)."""
        if not context.has_partition_key:
            raise ValueError("hf_assets encoding steps run for one backend: pass a partition key")
        backend = cached_config(self.config_path).backend(context.partition_key)
        name = output.name + (f".{output.mapping_key}" if output.mapping_key else "")
        return backend.metadata_dir / STEPS_DIR / output.run_id / output.step_key / f"{name}.json"

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        write_json_atomic({"value": obj, "host": socket.gethostname()}, self._path(context, context))

    def load_input(self, context: dg.InputContext):
        upstream = context.upstream_output
        path = self._path(context, upstream)
        try:
            return json.loads(path.read_text())["value"]
        except FileNotFoundError:
            raise dg.Failure(
                f"{socket.gethostname()} cannot see {path}, written by step {upstream.step_key} of run "
                f"{upstream.run_id}: every step of an encoding asset reads what earlier steps wrote under the "
                "backend's cache_dir, so cache_dir must be on a filesystem all of them share (NFS, Lustre, a "
                "ReadWriteMany volume mounted at the same path)",
                allow_retries=False,
            ) from None
