# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci verify``: check (and repair) a state directory.

    lp-oci verify [--state DIR] [--repair] [--json] [--min-age SECONDS]

Checks, in the database and librarian that ``--state`` (or the
configuration) names:

``corrupt``
    librarian files whose content does not have the sha256 they are
    stored under, or the size their content row records (every file is
    read in full);
``dangling``
    content rows whose file is missing (lost content: a build that
    refers to it cannot be exported or pushed; storing that content
    again, e.g. the next build that fetches the layer, heals the row);
``orphans``
    librarian files no content row refers to;
``temporary_files``
    leftovers of interrupted stores in ``<librarian>/incoming``;
``work_dirs``
    work directories of runs that are no longer alive
    (``<state>/work/<run>``, see `lpoci.runlock` where present);
``stuck_builds``
    builds in a non-final status (NEEDSBUILD, BUILDING, GATHERING,
    UPLOADING, CANCELLING) that no live process is working on
    (`build_is_live`).

``--repair`` removes orphans, temporary files and dead work directories,
quarantines corrupt files (moved to ``<librarian>/quarantine/``, kept as
evidence; the row stays, dangling until the content is stored again),
and marks stuck builds FAILEDTOUPLOAD (if UPLOADING) or FAILEDTOBUILD
(otherwise) with a ``failure_reason``.  Dangling rows cannot be
repaired here.  It is safe while other processes use the state:

- orphans and temporary files are removed only under the librarian's
  exclusive in-use lock (`LibrarianStorage.exclusive`, taken without
  waiting): every process storing content holds the shared lock until
  its transaction ends, so while verify holds the exclusive one no
  upload is between storing a file and committing its row, and an
  orphan is re-checked against the database under the lock.  When the
  lock is busy, only temporary files older than ``--min-age`` (default
  3600 seconds) are removed, and orphans are left (``"repair":
  "skipped: librarian in use"``);
- corrupt content is moved aside, never deleted: a concurrent reader
  already holding it open keeps reading the same inode;
- a build is stuck only if `build_is_live` says no live process owns it;
- orphans are never removed when the database cannot plausibly be the
  one that stored them: when it holds no content row at all, or
  accounts for fewer of the librarian's content files than the orphans
  are (more than half the librarian would go), or when an orphan is
  older than the database (its first migration): content is stored
  only into an existing database, so such a file was stored into
  another one.  A missing, emptied or
  mistyped database (``--config`` naming another, empty one) makes
  everything look orphaned; repair then keeps every file and says why
  in one line (``"repair": "skipped: ..."`` on each orphan).

``verify`` never writes the schema, and without ``--repair`` writes
nothing at all: the database is opened read-only, so a read-only copy
of a state can be verified.  A database with no Launchpad schema (a
missing or empty ``launchpad.db``, an empty PostgreSQL database) or an
outdated one is one line ``lp-oci: error: ...`` and exit 1.

Exit status: 0 when the state is clean (after ``--repair``, when
everything found was repaired), 1 when problems remain, 2 on usage
errors; a state that cannot be read is one line ``lp-oci: error: ...``
and exit 1.

``--json`` prints one document, whose shape is stable::

    {
      "state": "/abs/state",
      "librarian": "/abs/librarian",
      "repair": false,
      "files_checked": 12,        # librarian content files read
      "bytes_checked": 123456,
      "corrupt": [{"sha256", "path", "reason", "repair"}],
      "dangling": [{"sha256", "content_id", "size", "repair"}],
      "orphans": [{"sha256", "path", "size", "in_use", "repair"}],
      "temporary_files": [{"path", "age", "in_use", "repair"}],
      "work_dirs": [{"path", "repair"}],
      "stuck_builds": [{"build_id", "status", "repair"}],
      "found": 3,                 # entries in the six lists
      "problems": 0,              # entries not repaired
      "clean": true               # problems == 0
    }

``repair`` is null without ``--repair``; with it, a short string saying
what was done (``"removed"``, ``"quarantined as PATH"``, ``"marked
FAILEDTOBUILD"``) or ``"skipped: REASON"`` (still a problem).  ``age``
is in whole seconds.  ``in_use`` is true for orphans, and temporary
files younger than ``--min-age``, found while another process held the
librarian's in-use lock (it may be about to commit their rows or finish
writing them): they are listed but not counted in ``problems``.
Without ``--json``: one line per finding and a last line ``clean`` or
``N problems``.
"""

__all__ = [
    "VerifyError",
    "add_verify_parser",
    "build_is_live",
    "verify_main",
    "verify_state",
]

import json
import os
import re
import shutil
import time

from ocitypes.errors import OCIContentError

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX2 = re.compile(r"\A[0-9a-f]{2}\Z")
DEFAULT_MIN_AGE = 3600
# The report's lists of problems, in the order they are printed.
PROBLEM_KINDS = (
    "corrupt",
    "dangling",
    "orphans",
    "temporary_files",
    "work_dirs",
    "stuck_builds",
)
NON_FINAL = ("NEEDSBUILD", "BUILDING", "GATHERING", "UPLOADING", "CANCELLING")


class VerifyError(OCIContentError):
    """The state cannot be verified; the message is one line."""


def add_verify_parser(commands):
    """Add the ``verify`` command to ``lp-oci``'s subparsers."""
    verify = commands.add_parser(
        "verify",
        help="check the state's librarian and builds (and repair them)",
        description="Check every librarian file against its sha256 and "
        "size, and report dangling rows, orphan files, temporary files, "
        "dead work directories and stuck builds; --repair fixes what "
        "can be fixed, safely while other processes use the state.",
    )
    verify.add_argument("--state", default="var", help="state directory")
    verify.add_argument(
        "--repair", action="store_true", help="repair what is found"
    )
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.add_argument(
        "--min-age",
        type=int,
        default=DEFAULT_MIN_AGE,
        metavar="SECONDS",
        help="age after which a temporary file is debris even while "
        f"the librarian is in use (default {DEFAULT_MIN_AGE})",
    )
    verify.set_defaults(func=verify_main)
    return verify


def build_is_live(state_dir, build_id):
    """Whether a live process is working on build ``build_id``.

    The one liveness check for builds in a non-final status.  With
    `lpoci.runlock` (per-run work directories locked for the run's
    life), whether a live run owns ``build:<id>``; without it, whether
    another process holds the state lock (`lpoci.statelock`), which
    every ``lp-oci run`` holds.
    """
    try:
        from lpoci.runlock import owner_of
    except ImportError:
        from lpoci.statelock import state_lock_holder

        return state_lock_holder(state_dir) not in (None, os.getpid())
    return owner_of(state_dir, f"build:{build_id}") is not None


def _dead_work_dirs(state_dir):
    """The work directories of runs that are not alive."""
    try:
        from lpoci.runlock import LOCK_NAME, is_locked, work_root
    except ImportError:
        return []
    root = work_root(state_dir)
    try:
        names = sorted(os.listdir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    dead = []
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        lock = os.path.join(path, LOCK_NAME)
        if not os.path.exists(lock):
            # Being created, unless old (see runlock.CREATION_GRACE).
            try:
                if time.time() - os.lstat(path).st_mtime < 60:
                    continue
            except FileNotFoundError:
                continue
        elif is_locked(lock):
            continue
        dead.append(path)
    return dead


def _content_rows():
    """``{sha256: [(content id, size), ...]}`` of every content row."""
    from lp.services.database.interfaces import IStore
    from lp.services.librarian.model import LibraryFileContent

    rows = {}
    for content_id, sha256, size in IStore(LibraryFileContent).find(
        (
            LibraryFileContent.id,
            LibraryFileContent.sha256,
            LibraryFileContent.filesize,
        )
    ):
        rows.setdefault(sha256, []).append((content_id, size))
    return rows


def _librarian_files(root):
    """``(sha256, path)`` of each content file, and any other files."""
    content, other = [], []
    for top in sorted(os.listdir(root)):
        top_path = os.path.join(root, top)
        if not _HEX2.match(top) or not os.path.isdir(top_path):
            continue
        for name in sorted(os.listdir(top_path)):
            path = os.path.join(top_path, name)
            if _HEX64.match(name) and name[:2] == top:
                content.append((name, path))
            else:
                other.append(path)
    return content, other


def _stuck_builds(state_dir):
    from lp.buildmaster.enums import BuildStatus
    from lp.oci.model.ocirecipebuild import OCIRecipeBuild
    from lp.services.database.interfaces import IStore

    statuses = [getattr(BuildStatus, name) for name in NON_FINAL]
    builds = (
        IStore(OCIRecipeBuild)
        .find(OCIRecipeBuild, OCIRecipeBuild.status.is_in(statuses))
        .order_by(OCIRecipeBuild.id)
    )
    return [b for b in builds if not build_is_live(state_dir, b.id)]


def _mark_stranded(build):
    from lp.buildmaster.enums import BuildStatus

    previous = build.status
    status = (
        BuildStatus.FAILEDTOUPLOAD
        if previous == BuildStatus.UPLOADING
        else BuildStatus.FAILEDTOBUILD
    )
    bq = build.buildqueue_record
    if bq is not None:
        bq.destroySelf()
    build.updateStatus(status, force_invalid_transition=True)
    build.failure_reason = (
        f"stranded in {previous.name} with no live process "
        "(lp-oci verify --repair)"
    )
    return status


def verify_state(state_dir, repair=False, min_age=DEFAULT_MIN_AGE):
    """Check (and repair) the set-up services' state; the report."""
    import transaction

    from lp.services.librarian.storage import get_librarian_storage

    storage = get_librarian_storage()
    root = storage.root
    state_dir = os.path.abspath(state_dir)
    transaction.abort()
    # Is some process between storing content and committing its row?
    with storage.exclusive() as idle:
        busy = not idle
    rows = _content_rows()
    files, _ = _librarian_files(root)
    report = {
        "state": state_dir,
        "librarian": root,
        "repair": bool(repair),
        "files_checked": 0,
        "bytes_checked": 0,
        "corrupt": [],
        "dangling": [],
        "orphans": [],
        "temporary_files": [],
        "work_dirs": [],
        "stuck_builds": [],
    }
    on_disk = set()
    for sha256, path in files:
        on_disk.add(sha256)
        sizes = rows.get(sha256)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            continue
        expected = sizes[0][1] if sizes else None
        reason = storage.checkContent(sha256, expected, full=True)
        report["files_checked"] += 1
        report["bytes_checked"] += size
        if reason is not None and not reason.endswith(" is missing"):
            report["corrupt"].append(
                {"sha256": sha256, "path": path, "reason": reason}
            )
        elif sizes is None:
            report["orphans"].append(
                {"sha256": sha256, "path": path, "size": size}
            )
    for sha256, entries in sorted(rows.items()):
        if sha256 not in on_disk and not storage.exists(sha256):
            for content_id, size in entries:
                report["dangling"].append(
                    {"sha256": sha256, "content_id": content_id, "size": size}
                )
    now = time.time()
    try:
        names = sorted(os.listdir(storage.incoming))
    except FileNotFoundError:
        names = []
    for name in names:
        path = os.path.join(storage.incoming, name)
        try:
            age = now - os.lstat(path).st_mtime
        except FileNotFoundError:
            continue
        report["temporary_files"].append(
            {"path": path, "age": max(0, int(age))}
        )
    for path in _dead_work_dirs(state_dir):
        report["work_dirs"].append({"path": path})
    stuck = _stuck_builds(state_dir)
    for build in stuck:
        report["stuck_builds"].append(
            {"build_id": build.id, "status": build.status.name}
        )
    for key in PROBLEM_KINDS:
        for entry in report[key]:
            entry["repair"] = None
    # What a live store may still commit or finish is not (yet) a
    # problem: young temporary files and orphans while the librarian is
    # in use.
    for entry in report["orphans"]:
        entry["in_use"] = busy
    for entry in report["temporary_files"]:
        entry["in_use"] = busy and entry["age"] < min_age
    if repair:
        accounted = len(on_disk) - len(report["orphans"])
        refusal = _implausible(
            len(rows), accounted, len(report["orphans"])
        ) or _older_than_database(report["orphans"])
        _repair(report, storage, stuck, min_age, refusal)
    found = sum(len(report[key]) for key in PROBLEM_KINDS)
    unrepaired = sum(
        1
        for key in PROBLEM_KINDS
        for entry in report[key]
        if not entry.get("in_use")
        and (entry["repair"] is None or entry["repair"].startswith("skipped"))
    )
    report["found"] = found
    report["problems"] = unrepaired
    report["clean"] = unrepaired == 0
    return report


def _remove(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _implausible(content_rows, accounted, orphans):
    """Why ``orphans`` must not be removed, or None.

    :param content_rows: the database's content rows.
    :param accounted: librarian content files that have a row.
    """
    if not orphans:
        return None
    if content_rows == 0:
        return (
            f"not removing {orphans} orphans: the database holds no content "
            "rows (a lost or new database, or the wrong --config?)"
        )
    if accounted < orphans:
        return (
            f"not removing {orphans} orphans: the database accounts for "
            f"only {accounted} of the librarian's {accounted + orphans} "
            "files (a lost or new database, or the wrong --config?)"
        )
    return None


def _database_created():
    """When the database's first migration was applied (UTC), or None."""
    from datetime import datetime, timezone

    from lp.services.database.connection import get_main_store
    from lp.services.database.migration import REVISION_TABLE

    (value,) = (
        get_main_store()
        .execute(f"SELECT min(date_applied) FROM {REVISION_TABLE}")
        .get_one()
    )
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc)


def _older_than_database(orphans):
    """Why orphans older than the database must be kept, or None."""
    if not orphans:
        return None
    created = _database_created()
    if created is None:
        return None
    older = 0
    for entry in orphans:
        try:
            mtime = os.lstat(entry["path"]).st_mtime
        except FileNotFoundError:
            continue
        # (A second's slack for coarse file system timestamps.)
        if mtime < created.timestamp() - 1:
            older += 1
    if not older:
        return None
    return (
        f"not removing {len(orphans)} orphans: {older} are older than the "
        f"database (created {created:%Y-%m-%d %H:%M:%S} UTC), so were "
        "stored into another one (a replaced database, or the wrong "
        "--config?)"
    )


def _repair(report, storage, stuck, min_age, refusal=None):
    import transaction

    from lp.services.database.interfaces import IStore
    from lp.services.librarian.model import LibraryFileContent

    for entry in report["corrupt"]:
        target = storage.quarantine(entry["sha256"], entry["reason"])
        entry["repair"] = (
            f"quarantined as {target}" if target else "removed meanwhile"
        )
    for entry in report["dangling"]:
        entry["repair"] = (
            "skipped: the content is lost; storing it again heals"
        )
    with storage.exclusive() as idle:
        for entry in report["temporary_files"]:
            if idle or entry["age"] >= min_age:
                _remove(entry["path"])
                entry["repair"] = "removed"
            else:
                entry["repair"] = (
                    "skipped: librarian in use and younger than --min-age"
                )
        if idle:
            # Re-read the rows under the lock: no upload can be between
            # storing and committing now.
            transaction.abort()
            store = IStore(LibraryFileContent)
        for entry in report["orphans"]:
            if refusal:
                entry["repair"] = f"skipped: {refusal}"
                continue
            if not idle:
                entry["repair"] = "skipped: librarian in use"
                continue
            if not store.find(
                LibraryFileContent,
                LibraryFileContent.sha256 == entry["sha256"],
            ).is_empty():
                entry["repair"] = "none needed: committed meanwhile"
                continue
            storage.remove(entry["sha256"])
            entry["repair"] = "removed"
        transaction.abort()
    for entry in report["work_dirs"]:
        _remove(entry["path"])
        entry["repair"] = "removed"
    by_id = {build.id: build for build in stuck}
    for entry in report["stuck_builds"]:
        build = by_id[entry["build_id"]]
        status = _mark_stranded(build)
        entry["repair"] = f"marked {status.name}"
    if stuck:
        transaction.commit()


def _line(key, entry):
    what = {
        "corrupt": lambda e: f"corrupt: {e['reason']}",
        "dangling": lambda e: f"dangling: content row {e['content_id']} "
        f"({e['sha256']}) has no file",
        "orphans": lambda e: f"orphan: {e['path']} has no content row",
        "temporary_files": lambda e: f"temporary file: {e['path']} "
        f"({e['age']} s old)",
        "work_dirs": lambda e: f"work directory of a dead run: {e['path']}",
        "stuck_builds": lambda e: f"stuck build: {e['build_id']} "
        f"{e['status']} with no live process",
    }[key](entry)
    if entry["repair"]:
        what += f": {entry['repair']}"
    return what


def verify_main(args, stdout, stderr):
    """The ``lp-oci verify`` command; see the module docstring."""
    from lp.services.config import config
    from lp.services.database.connection import default_database_uri
    from lp.services.scripts import setup_services

    if not os.path.isdir(args.state):
        raise VerifyError(f"no state directory {args.state}")
    if not os.environ.get("LP_DATABASE_URI") and not config.database.url:
        database = default_database_uri(args.state)[len("sqlite:") :]
        if not os.path.isfile(database):
            raise VerifyError(
                f"no Launchpad state in {args.state} (no {database})"
            )
    if args.min_age < 0:
        stderr.write("lp-oci: error: --min-age must be at least 0\n")
        return 2
    from storm.exceptions import DatabaseError

    try:
        # Never the schema; without --repair, nothing at all.
        setup_services(args.state, schema="check", read_only=not args.repair)
        if args.repair:
            from lpoci.cli import state_lock

            with state_lock(args, "verify --repair", stderr):
                report = verify_state(args.state, True, args.min_age)
        else:
            report = verify_state(args.state, False, args.min_age)
    except DatabaseError as e:
        raise VerifyError(
            f"cannot use the database of {args.state}: "
            + " ".join(str(e).split())
        ) from None
    if args.json:
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    else:
        refused = set()
        for key in PROBLEM_KINDS:
            for entry in report[key]:
                if key == "orphans" and entry["repair"] in refused:
                    continue
                if key == "orphans" and "orphans: " in (entry["repair"] or ""):
                    # One line for all: the reason, not every file.
                    refused.add(entry["repair"])
                    stdout.write(entry["repair"][len("skipped: ") :] + "\n")
                    continue
                stdout.write(_line(key, entry) + "\n")
        stdout.write(
            f"checked {report['files_checked']} files "
            f"({report['bytes_checked']} bytes): "
            + (
                "clean\n"
                if report["clean"]
                else f"{report['problems']} problems\n"
            )
        )
    return 0 if report["clean"] else 1
