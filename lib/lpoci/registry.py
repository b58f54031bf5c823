# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Registry pushes for ``lp-oci run --registry`` and ``lp-oci run-jobs``.

``lp-oci run ARCHIVE --registry URL --image NAME [--tag TAG]
[--credentials FILE]`` gives the recipe one push rule (replacing the
ones it had), so that the upload processor schedules an
`OCIRegistryUploadJob` when the build is FULLYBUILT, then runs that job.
``--credentials`` names a JSON file ``{"username": ..., "password":
...}``; the credentials are sealed in the state database with a key from
``$LP_OCI_REGISTRY_SECRETS_PRIVATE_KEY[_FILE]``, or else one generated
once in ``<state>/registry-secrets.key`` (mode 0600).

``lp-oci run-jobs [--state DIR]`` runs the registry upload jobs that are
ready (those a failed run left to retry).
"""

__all__ = [
    "RegistryRunError",
    "configure_push_rule",
    "due_text",
    "ensure_secrets_key",
    "platform_text",
    "push_report",
    "read_credentials_file",
    "run_jobs_main",
    "run_pending_push",
    "write_push_summary",
]

import base64
import json
import logging
import os
from datetime import datetime, timezone
from urllib.parse import urlsplit

import transaction
from nacl.public import PrivateKey
from zope.component import getUtility

from lp.oci.interfaces.ocipushrule import IOCIPushRuleSet
from lp.oci.interfaces.ociregistrycredentials import (
    IOCIRegistryCredentialsSet,
)
from lp.oci.model.ociregistryclient import OCIRegistryClient
from lp.oci.model.ociregistrycredentials import (
    PRIVATE_KEY_ENV,
    PRIVATE_KEY_FILE_ENV,
    PUBLIC_KEY_ENV,
)
from lp.registry.interfaces.person import IPersonSet
from lp.services.job.interfaces.job import JobStatus

SECRETS_KEY_FILE = "registry-secrets.key"


class RegistryRunError(Exception):
    """The push failed; the message is one line for the user."""


def ensure_secrets_key(state_dir):
    """Configure a key for sealing credentials, made once per state."""
    if any(
        os.environ.get(name)
        for name in (PRIVATE_KEY_ENV, PRIVATE_KEY_FILE_ENV, PUBLIC_KEY_ENV)
    ):
        return
    path = os.path.join(state_dir, SECRETS_KEY_FILE)
    if not os.path.exists(path):
        key = base64.b64encode(bytes(PrivateKey.generate())).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    os.environ[PRIVATE_KEY_FILE_ENV] = os.path.abspath(path)


def read_credentials_file(path):
    """``{"username", "password"}`` from a JSON file; never echoed."""
    try:
        with open(path) as f:
            value = json.load(f)
    except OSError as e:
        raise RegistryRunError(
            f"cannot read credentials file {path}: {e.strerror}"
        ) from None
    except ValueError:
        raise RegistryRunError(
            f"credentials file {path} is not JSON"
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(value.get(key), str) for key in ("username", "password")
    ):
        raise RegistryRunError(
            f"credentials file {path} must hold a username and a password"
        )
    return {"username": value["username"], "password": value["password"]}


def waiting_pushes(recipe):
    """The recipe's registry upload jobs not yet finished (oldest first)."""
    # Circular import.
    from lp.oci.model.ocirecipebuild import OCIRecipeBuild
    from lp.oci.model.ocirecipebuildjob import (
        OCIRecipeBuildJob,
        OCIRegistryUploadJob,
    )
    from lp.services.database.interfaces import IStore
    from lp.services.job.model.job import Job

    rows = (
        IStore(OCIRecipeBuildJob)
        .find(
            OCIRecipeBuildJob,
            OCIRecipeBuildJob.job_type == OCIRegistryUploadJob.class_job_type,
            OCIRecipeBuildJob.job_id == Job.id,
            OCIRecipeBuildJob.build_id == OCIRecipeBuild.id,
            OCIRecipeBuild.recipe_id == recipe.id,
            Job.status.is_in([JobStatus.WAITING, JobStatus.RUNNING]),
        )
        .order_by(Job.id)
    )
    return [OCIRegistryUploadJob(row) for row in rows]


def remove_push_rule(rule):
    """Remove ``rule``, unless a push not yet done needs it.

    A registry upload job pushes to its recipe's push rules when it
    runs: removing one while a job waits would lose that push (the job
    would complete having pushed nothing, or to another destination).

    :raises RegistryRunError: a push is waiting; one line.
    """
    waiting = waiting_pushes(rule.recipe)
    if waiting:
        job = waiting[0]
        due = job.job.scheduled_start
        when = f", due {due:%Y-%m-%d %H:%M:%S} UTC" if due else ""
        raise RegistryRunError(
            f"build {job.build.id}'s push to {rule.registry_url} "
            f"{rule.image_name} is still waiting{when}: this run would "
            "remove its destination (run lp-oci run-jobs first)"
        )
    rule.destroySelf()


def configure_push_rule(recipe, registry_url, image_name, credentials=None):
    """Make ``recipe`` push to exactly this registry and image."""
    owner = getUtility(IPersonSet).getByName(recipe.owner_name)
    if owner is None:
        owner = getUtility(IPersonSet).new(recipe.owner_name)
    try:
        registry_credentials = getUtility(
            IOCIRegistryCredentialsSet
        ).getOrCreate(owner, owner, registry_url, credentials or {})
    except ValueError as e:
        raise RegistryRunError(str(e)) from None
    rule_set = getUtility(IOCIPushRuleSet)
    kept = None
    for rule in rule_set.findByRecipe(recipe):
        if (
            rule.registry_credentials == registry_credentials
            and rule.image_name == image_name
        ):
            kept = rule
        else:
            remove_push_rule(rule)
    if kept is None:
        kept = rule_set.new(recipe, registry_credentials, image_name)
    transaction.commit()
    return kept


def platform_text(platform):
    """``os/architecture[/variant]`` of an OCI platform dict ("" if none)."""
    return "/".join(
        platform[key]
        for key in ("os", "architecture", "variant")
        if platform.get(key)
    )


def push_report(job):
    """The ``registry`` section of ``lp-oci run --json``.

    Where the build went (``registry`` host, ``repository``, ``tags``,
    the pushed ``index_digest`` and a ``pull`` reference), what the push
    did, and how the job stands (``status``, ``error_summary``, ``due``
    when it waits for ``lp-oci run-jobs``).
    """
    results = job.registry_results
    rule = next(iter(job.build.recipe.push_rules), None)
    rule_id = str(rule.id) if rule is not None else next(iter(results), "")
    result = results.get(rule_id) or {}
    registry_url = result.get("registry_url") or (
        rule.registry_url if rule is not None else ""
    )
    registry = urlsplit(registry_url).netloc or registry_url or None
    repository = result.get("image_name") or (
        rule.image_name if rule is not None else None
    )
    pushed = job.manifest_list_digests.get(rule_id) or {}
    digests = sorted(set(pushed.values()))
    index_digest = digests[0] if len(digests) == 1 else None
    status = job.job.status
    due = None
    if status == JobStatus.WAITING and job.job.scheduled_start is not None:
        due = job.job.scheduled_start.isoformat()
    return {
        "status": status.name,
        "error_summary": (
            " ".join(job.error_summary.split()) if job.error_summary else None
        ),
        "due": due,
        "registry": registry,
        "repository": repository,
        "tags": sorted(pushed)
        or list(
            job.tags or OCIRegistryClient._calculateTags(job.build.recipe)
        ),
        "index_digest": index_digest,
        "pull": (
            f"{registry}/{repository}@{index_digest}"
            if index_digest and registry and repository
            else None
        ),
        "blobs_uploaded": result.get("blobs_uploaded", 0),
        "blobs_mounted": result.get("blobs_mounted", 0),
        "blobs_existing": result.get("blobs_existing", 0),
        "bytes_uploaded": result.get("bytes_uploaded", 0),
        "manifests": [
            {
                "digest": manifest["digest"],
                "platform": platform_text(manifest["platform"]),
            }
            for manifest in result.get("manifests", [])
        ],
        "seconds": result.get("seconds"),
    }


def run_pending_push(build, tags=None, progress=None):
    """Run the registry upload job the build's processing scheduled.

    :param progress: optional `RunProgress`: the push is its ``push``
        phase (bytes uploaded).
    :return: the ``registry`` report (see `push_report`).
    :raises RegistryRunError: if there is no job, or it failed; its
        ``report`` is the ``registry`` report, if there is a job.
    """
    job = build.last_registry_upload_job
    if job is None:
        raise RegistryRunError(
            f"build {build.id} has no registry upload scheduled"
        )
    if tags:
        job.tags = tags
        transaction.commit()
    phase = progress.phase("push") if progress is not None else None
    job.runAndRecord()
    report = push_report(job)
    if phase is not None:
        phase.finish(report["bytes_uploaded"], report["status"])
    if job.job.status != JobStatus.COMPLETED:
        retry = (
            f" (lp-oci run-jobs will try again: "
            f"{due_text(job.job.scheduled_start)})"
            if job.job.status == JobStatus.WAITING
            else ""
        )
        error = RegistryRunError(
            f"registry push failed: {job.error_summary}{retry}"
        )
        error.report = report
        raise error
    return report


def due_text(when, now=None):
    """``due 2026-12-05 01:41:00 UTC (in 1 min 5 s)`` for a job."""
    if when is None:
        return "due now"
    now = now or datetime.now(timezone.utc)
    seconds = round((when - now).total_seconds())
    stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if seconds <= 0:
        return f"due {stamp} (now)"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{n} {unit}"
        for n, unit in ((hours, "h"), (minutes, "min"), (seconds, "s"))
        if n
    ]
    return f"due {stamp} (in {' '.join(parts)})"


def write_push_summary(report, stdout):
    """The ``registry`` report as text: where the build went, then how."""
    stdout.write(
        f"registry: {report['registry']}, repository "
        f"{report['repository']}, tags {', '.join(report['tags'])}, "
        f"index {report['index_digest'] or '(not pushed)'}\n"
    )
    if report["pull"]:
        stdout.write(f"  pull: {report['pull']}\n")
    if report["status"] != "COMPLETED":
        due = report["due"] and datetime.fromisoformat(report["due"])
        stdout.write(
            f"  not pushed: {report['status']}"
            + (
                f", lp-oci run-jobs will try again, {due_text(due)}"
                if due
                else ""
            )
            + "\n"
        )
        return
    stdout.write(
        f"  {report['blobs_uploaded']} blobs uploaded "
        f"({report['bytes_uploaded']} bytes), "
        f"{report['blobs_mounted']} mounted, "
        f"{report['blobs_existing']} already there, "
        f"in {report['seconds']:.2f} s\n"
    )
    for manifest in report["manifests"]:
        stdout.write(
            f"  {manifest['platform']} manifest {manifest['digest']}\n"
        )


def _one_line(text):
    return " ".join(text.split()) if text else None


def waiting_jobs(now=None):
    """The registry upload jobs waiting for a time still to come."""
    from lp.oci.model.ocirecipebuildjob import (
        OCIRecipeBuildJob,
        OCIRegistryUploadJob,
    )
    from lp.services.database.interfaces import IStore
    from lp.services.job.model.job import Job

    now = now or datetime.now(timezone.utc)
    rows = (
        IStore(OCIRecipeBuildJob)
        .find(
            OCIRecipeBuildJob,
            OCIRecipeBuildJob.job_type == OCIRegistryUploadJob.class_job_type,
            OCIRecipeBuildJob.job_id == Job.id,
            Job.status == JobStatus.WAITING,
            Job.scheduled_start > now,
        )
        .order_by(Job.scheduled_start, Job.id)
    )
    return [OCIRegistryUploadJob(row) for row in rows]


def run_jobs_main(args, stdout, stderr):
    """The ``lp-oci run-jobs`` command."""
    from lp.oci.model.ocirecipebuildjob import (
        OCIRegistryUploadJob,
        run_archive_checksum_jobs,
        run_registry_upload_jobs,
    )
    from lp.services.scripts import setup_services
    from lpoci.recovery import fail_owned, recover_stranded
    from lpoci.runlock import RunLock

    # A job that fails is reported in its own line below: the job's
    # and the client's log records go nowhere.
    oci_log = logging.getLogger("lp.oci")
    oci_log.propagate = False
    if not oci_log.handlers:
        oci_log.addHandler(logging.NullHandler())
    setup_services(args.state)
    ensure_secrets_key(args.state)
    with RunLock(args.state, "run-jobs") as lock, lock.tempdir():
        # Jobs a dead process left RUNNING are queued again first.
        recover_stranded(args.state)
        for job in OCIRegistryUploadJob.iterReady():
            # Owned before runAndRecord commits them RUNNING.
            lock.own(f"job:{job.job.id}")
        try:
            jobs = run_registry_upload_jobs()
        except BaseException as e:
            fail_owned(lock.owns, e)
            raise
        waiting = waiting_jobs()
        checksums = [
            {
                "build_id": build.id,
                "format": format_name,
                "size": None if checksum is None else checksum.size,
                "sha256": None if checksum is None else checksum.sha256,
            }
            for build, format_name, checksum in run_archive_checksum_jobs()
        ]
    results = [
        {
            "build_id": job.build.id,
            "status": job.job.status.name,
            "error_summary": (
                " ".join(job.error_summary.split())
                if job.error_summary
                else None
            ),
        }
        for job in jobs
    ]
    failed = sum(1 for r in results if r["status"] != "COMPLETED")
    if args.json:
        json.dump(
            {
                "jobs": results,
                "waiting": [
                    {
                        "build_id": job.build.id,
                        "due": job.job.scheduled_start.isoformat(),
                        "error_summary": _one_line(job.error_summary),
                    }
                    for job in waiting
                ],
                "archive_checksums": checksums,
            },
            stdout,
            indent=2,
        )
        stdout.write("\n")
    elif not results:
        stdout.write("no registry upload jobs ready\n")
    for result in [] if args.json else results:
        line = f"build {result['build_id']}: {result['status']}"
        if result["error_summary"]:
            line += f": {result['error_summary']}"
        stdout.write(line + "\n")
    for job in [] if args.json else waiting:
        line = (
            f"build {job.build.id}: push waiting, "
            f"{due_text(job.job.scheduled_start)}"
        )
        if job.error_summary:
            line += f" (last attempt: {_one_line(job.error_summary)})"
        stdout.write(line + "\n")
    for checksum in [] if args.json else checksums:
        stdout.write(
            f"build {checksum['build_id']}: {checksum['format']} archive "
            f"{checksum['size']} bytes, sha256 {checksum['sha256']}\n"
        )
    return 1 if failed else 0
