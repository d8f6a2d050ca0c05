"""django-q2 entry points for imports: take ids, call services."""

import logging

from imports import pipeline, services

logger = logging.getLogger("inboxerr.imports")


def run_import(job_id: str) -> str:
    """Claim the job and run it. A job already finished, cancelled or held by a live worker is
    left alone, so a task delivered twice never runs one job twice."""
    token = pipeline.import_claim(job_id=job_id)
    if token is None:
        logger.info("Import %s not claimed (finished, cancelled or running elsewhere)", job_id)
        return "not claimed"
    job = pipeline.import_run(job_id=job_id, token=token)
    return job.status


def recover_stuck_imports() -> int:
    return len(services.imports_recover_stuck())


def sweep_import_files() -> int:
    return services.import_files_sweep()
