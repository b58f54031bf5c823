# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""What must hold in a state directory and a registry after any fault.

Read straight from the files (SQLite, the librarian's directory) and
over HTTP (the registry), not through the code under test:

- no build is left in a non-final state once no process runs;
- every file of a FULLYBUILT build is in the librarian with the sha256
  and size its row records, and every layer's recorded digest is that
  sha256 (no false FULLYBUILT, no lost or corrupt blob);
- no work directory and no librarian temporary file is left behind;
- a registry tag points at a manifest (or index) whose every manifest
  and blob the registry has (HEAD of each).
"""

__all__ = [
    "append_report",
    "registry_problems",
    "state_problems",
    "verify_problems",
]

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

# NEEDSBUILD, BUILDING, UPLOADING, CANCELLING, GATHERING.
UNFINISHED = (0, 6, 8, 9, 11)
FULLYBUILT = 1

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), os.path.getsize(path)


def state_problems(state, librarian=None, check_debris=True, connect=None):
    """Every broken invariant of the state directory ``state``.

    :param connect: returns a DB-API connection to the database; by
        default, read-only to ``<state>/launchpad.db``.
    """
    librarian = librarian or os.path.join(state, "librarian")
    problems = []
    if connect is None:
        db = sqlite3.connect(f"file:{state}/launchpad.db?mode=ro", uri=True)
    else:
        db = connect()
    try:
        for build_id, status in _query(
            db, "SELECT id, status FROM OCIRecipeBuild"
        ):
            if status in UNFINISHED:
                problems.append(f"build {build_id} stuck in status {status}")
        rows = _query(
            db,
            "SELECT b.id, f.layer_file_digest, c.sha256, c.filesize "
            "FROM OCIRecipeBuild b "
            "JOIN OCIFile f ON f.build = b.id "
            "JOIN LibraryFileAlias a ON f.library_file = a.id "
            "JOIN LibraryFileContent c ON a.content = c.id "
            f"WHERE b.status = {FULLYBUILT}",
        )
        job_rows = _query(
            db, "SELECT j.id FROM Job j WHERE j.status = 1"  # RUNNING
        )
    finally:
        db.close()
    checked = {}
    for build_id, digest, sha256, size in rows:
        # (PostgreSQL pads fixed-width text.)
        digest = digest.strip() if digest else digest
        sha256 = sha256.strip()
        if sha256 not in checked:
            path = os.path.join(librarian, sha256[:2], sha256)
            checked[sha256] = (
                _sha256_of(path) if os.path.isfile(path) else None
            )
        actual = checked[sha256]
        if actual is None:
            problems.append(f"build {build_id}: blob {sha256} is missing")
        elif actual != (sha256, size):
            problems.append(f"build {build_id}: blob {sha256} is corrupt")
        if digest and digest.startswith("sha256:") and digest[7:] != sha256:
            problems.append(
                f"build {build_id}: layer {digest} stored as {sha256}"
            )
    for (job_id,) in job_rows:
        problems.append(f"job {job_id} stuck RUNNING")
    if check_debris:
        work = os.path.join(state, "work")
        if os.path.isdir(work) and os.listdir(work):
            problems.append(f"work directories left: {os.listdir(work)}")
        incoming = os.path.join(librarian, "incoming")
        if os.path.isdir(incoming):
            debris = [n for n in os.listdir(incoming) if n.startswith(".")]
            if debris:
                problems.append(f"librarian temporary files left: {debris}")
    return problems


def verify_problems(state, env):
    """What ``lp-oci verify --state STATE --json`` finds; [] if clean."""
    result = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", "verify", "--state", state]
        + ["--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return [f"verify failed: {result.returncode} {result.stderr}"]
    if result.returncode == 0 and report.get("clean"):
        return []
    return [
        f"verify: {key}: {entry}"
        for key, entries in sorted(report.items())
        if isinstance(entries, list)
        for entry in entries
    ] or [f"verify: {report}"]


def _query(db, sql):
    cursor = db.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def _request(url, method="GET", accept=None):
    request = urllib.request.Request(url, method=method)
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def registry_problems(registry_url, image, tag):
    """Every blob or manifest missing behind ``image:tag``; [] if none.

    A tag that does not exist is no problem (nothing points anywhere).
    """
    base = f"{registry_url}/v2/{image}"
    try:
        _, body = _request(f"{base}/manifests/{tag}", accept=MANIFEST_TYPES)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise
    problems = []
    pending = [json.loads(body)]
    while pending:
        document = pending.pop()
        for child in document.get("manifests", []):
            try:
                _, body = _request(
                    f"{base}/manifests/{child['digest']}",
                    accept=MANIFEST_TYPES,
                )
            except urllib.error.HTTPError as e:
                problems.append(f"manifest {child['digest']}: HTTP {e.code}")
                continue
            pending.append(json.loads(body))
        blobs = list(document.get("layers", []))
        if "config" in document:
            blobs.append(document["config"])
        for blob in blobs:
            try:
                _request(f"{base}/blobs/{blob['digest']}", method="HEAD")
            except urllib.error.HTTPError as e:
                problems.append(f"blob {blob['digest']}: HTTP {e.code}")
    return problems


def append_report(figures):
    """Append ``figures`` to ``$LP_OCI_FAULTS_REPORT`` if it is set."""
    path = os.environ.get("LP_OCI_FAULTS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(figures, sort_keys=True) + "\n")
