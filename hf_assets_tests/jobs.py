"""Reconstructable jobs for tests that run on executors with other processes (multiprocess, Dask): each process
builds the definitions again from HF_ASSETS_DATALOADER_CONFIG and HF_ASSETS_EXECUTOR."""


def prepare_job():
    """The prepare_datasets job of the config HF_ASSETS_DATALOADER_CONFIG names."""
    from hf_assets.definitions import build_definitions

    return build_definitions().resolve_job_def("prepare_datasets")


def prepare_job_again():
    """The same job behind a second pointer: a process caches the job it reconstructs per pointer, so a test that
    changes HF_ASSETS_EXECUTOR or the config between two runs needs another one."""
    return prepare_job()


def prepare_job_on_dask_again():
    """Another pointer, for the second Dask test: the module's workers still hold the first test's job."""
    return prepare_job()


def prepare_job_for_retries():
    """Another pointer, for the retry test (see `prepare_job_again`)."""
    return prepare_job()


def prepare_job_for_reexecution():
    """Another pointer, for the failing run of the re-execution test."""
    return prepare_job()


def prepare_job_for_reexecution_again():
    """Another pointer, for the re-execution from failure."""
    return prepare_job()


def prepare_job_for_pool_limit():
    """Another pointer, for the pool limit test on the multiprocess executor."""
    return prepare_job()
