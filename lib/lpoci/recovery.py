# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Recover what dead processes left in a state directory.

`lp-oci run` (and `lp-oci verify --repair`) call `recover_stranded` at
start, after `setup_services`:

- the work directories of dead runs are removed (`sweep_work_dirs`),
  and the librarian's temporary files that dead processes left in
  ``incoming`` (`LibrarianStorage.sweepIncoming`); when a dead process
  was found, librarian content that no row refers to is removed too
  (`remove_orphans`, under the librarian's exclusive in-use lock);
- an `OCIRecipeBuild` in a non-final state (NEEDSBUILD, BUILDING,
  GATHERING, UPLOADING, CANCELLING) owned by no live run
  (`lpoci.runlock.owner_of`) is failed with a reason naming what
  happened: FAILEDTOUPLOAD if its files had been collected
  (GATHERING, UPLOADING), else FAILEDTOBUILD; its build queue entry is
  removed.  As Launchpad's build farm manager does for a builder that
  vanished, the work is retried rather than trusted: each `lp-oci run`
  makes a new build, which reuses the layers already stored, so the
  rerun *is* the retry, and the stranded build stays as the record of
  the interrupted attempt;
- a registry upload `Job` left RUNNING by no live run is queued again
  (pushes are idempotent: the registry keeps blobs by digest and the
  tag moves only after the manifest is complete), for the next
  `lp-oci run-jobs`.
"""

__all__ = [
    "STRANDED_STATUSES",
    "fail_owned",
    "find_stranded",
    "recover_stranded",
    "remove_orphans",
    "write_finished_builds",
]

import json
import os

import transaction

from lp.buildmaster.enums import BuildStatus
from lp.services.database.interfaces import IStore
from lp.services.job.interfaces.job import JobStatus
from lpoci.runlock import live_runs, sweep_work_dirs

# A build in one of these states is being worked on by some process.
STRANDED_STATUSES = (
    BuildStatus.NEEDSBUILD,
    BuildStatus.BUILDING,
    BuildStatus.GATHERING,
    BuildStatus.UPLOADING,
    BuildStatus.CANCELLING,
)

_COLLECTED = (BuildStatus.GATHERING, BuildStatus.UPLOADING)


def find_stranded(state_dir):
    """Builds and registry jobs in a non-final state with no live owner.

    :return: ``(builds, jobs)``: `OCIRecipeBuild`s and
        `OCIRecipeBuildJob`-wrapped registry upload jobs.
    """
    from lp.oci.model.ocirecipebuild import OCIRecipeBuild
    from lp.oci.model.ocirecipebuildjob import OCIRecipeBuildJob
    from lp.services.job.model.job import Job

    owned = set()
    for run in live_runs(state_dir):
        owned.update(run["owns"])
    store = IStore(OCIRecipeBuild)
    builds = [
        build
        for build in store.find(
            OCIRecipeBuild, OCIRecipeBuild.status.is_in(STRANDED_STATUSES)
        ).order_by(OCIRecipeBuild.id)
        if f"build:{build.id}" not in owned
    ]
    jobs = [
        row
        for row in store.find(
            OCIRecipeBuildJob,
            OCIRecipeBuildJob.job_id == Job.id,
            Job.status == JobStatus.RUNNING,
        ).order_by(Job.id)
        if f"job:{row.job_id}" not in owned
    ]
    return builds, jobs


def _fail_build(build, reason):
    was = build.status
    status = (
        BuildStatus.FAILEDTOUPLOAD
        if was in _COLLECTED
        else BuildStatus.FAILEDTOBUILD
    )
    build.failure_reason = f"{reason} while {was.name}"
    bq = build.buildqueue_record
    if bq is not None:
        bq.destroySelf()
    build.updateStatus(status, force_invalid_transition=True)
    return f"build {build.id}: {was.name} -> {status.name}"


def fail_owned(keys, exc):
    """Fail the unfinished builds among ``keys`` because of ``exc``.

    What a run does with what it owns when it is interrupted or fails
    on the way out; registry jobs left RUNNING are queued again.  Best
    effort: if the database itself is what failed, the rows stay for
    `recover_stranded` at the next start.  Commits.
    """
    from lp.oci.model.ocirecipebuild import OCIRecipeBuild
    from lp.oci.model.ocirecipebuildjob import OCIRecipeBuildJob
    from lpoci.failures import describe

    if isinstance(exc, KeyboardInterrupt):
        reason = f"Interrupted ({getattr(exc, 'name', 'SIGINT')})"
    else:
        reason = f"Failed ({describe(exc)})"
    try:
        # What failed may have ended the transaction already (SQLite
        # rolls back by itself on a full disk).
        transaction.abort()
    except Exception:
        pass
    try:
        store = IStore(OCIRecipeBuild)
        for key in keys:
            kind, _, id = key.partition(":")
            if kind == "build":
                build = store.get(OCIRecipeBuild, int(id))
                if build is not None and build.status in STRANDED_STATUSES:
                    _fail_build(build, reason)
            elif kind == "job":
                row = store.get(OCIRecipeBuildJob, int(id))
                if row is not None and row.job.status == JobStatus.RUNNING:
                    row.job.queue()
        transaction.commit()
    except Exception:
        transaction.abort()


def write_finished_builds(keys, stdout, as_json=False):
    """Say which builds among ``keys`` are FULLYBUILT (committed).

    For a run interrupted after its build was committed: the build is
    done even though the report was not written.  One line per build
    (``build N: FULLYBUILT (interrupted before the report; ...)``), or
    with ``as_json`` one document ``{"builds": [{"build_id", "status"}],
    "interrupted": true}``.  Best effort.
    """
    from lp.oci.model.ocirecipebuild import OCIRecipeBuild

    try:
        transaction.abort()
        store = IStore(OCIRecipeBuild)
        builds = []
        for key in keys:
            kind, _, id = key.partition(":")
            if kind == "build":
                build = store.get(OCIRecipeBuild, int(id))
                if (
                    build is not None
                    and build.status == BuildStatus.FULLYBUILT
                ):
                    builds.append(build.id)
        transaction.abort()
    except Exception:
        return
    if as_json and builds:
        json.dump(
            {
                "builds": [
                    {"build_id": id, "status": "FULLYBUILT"} for id in builds
                ],
                "interrupted": True,
            },
            stdout,
        )
        stdout.write("\n")
        return
    for id in builds:
        stdout.write(
            f"build {id}: FULLYBUILT (interrupted before the report; "
            f"lp-oci show {id})\n"
        )


def remove_orphans(storage):
    """Remove librarian content no `LibraryFileContent` row refers to.

    Only under the librarian's exclusive in-use lock (taken without
    waiting; nothing is removed if another process is between storing
    content and committing its row), and the rows are read under it.
    Lists the librarian's directory; reads no content.

    :return: the sha256s removed.
    """
    from lp.services.librarian.model import LibraryFileContent

    removed = []
    with storage.exclusive() as idle:
        if not idle:
            return removed
        transaction.abort()
        known = set(IStore(LibraryFileContent).find(LibraryFileContent.sha256))
        known = {sha256.strip() for sha256 in known}
        for name in sorted(os.listdir(storage.root)):
            if len(name) != 2 or not os.path.isdir(
                os.path.join(storage.root, name)
            ):
                continue
            for sha256 in sorted(os.listdir(os.path.join(storage.root, name))):
                if sha256 in known or not sha256.startswith(name):
                    continue
                try:
                    storage.getPath(sha256)
                except ValueError:
                    continue
                storage.remove(sha256)
                removed.append(sha256)
        transaction.abort()
    return removed


def recover_stranded(state_dir):
    """Sweep dead runs' work directories and recover their rows.

    Commits.  :return: a list of one-line descriptions of what was done.
    """
    from lp.services.librarian.storage import get_librarian_storage

    done = [
        f"removed the work directory {path} of a dead run"
        for path in sweep_work_dirs(state_dir)
    ]
    storage = get_librarian_storage()
    done.extend(
        f"removed the temporary file {path} of a dead process"
        for path in storage.sweepIncoming()
    )
    if done:
        # A process died: it may have stored content whose row it never
        # committed.
        done.extend(
            f"removed librarian content {sha256} that no row refers to"
            for sha256 in remove_orphans(storage)
        )
    builds, jobs = find_stranded(state_dir)
    for build in builds:
        done.append(
            _fail_build(
                build,
                "Abandoned: the lp-oci process running the build died",
            )
        )
    for row in jobs:
        row.job.queue()
        done.append(f"registry upload job {row.job_id}: RUNNING -> WAITING")
    transaction.commit()
    return done
