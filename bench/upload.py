# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark upload processing of many manifests (a report, not a test).

``python -m bench.upload`` (part of ``make bench``) writes one OCI
upload of ``--manifests`` distinct image manifests (10,000 by default),
each with a config of its own and all sharing one small layer, as the
build farm files it, then times `UploadProcessor.processBuildUpload` on
it, in a fresh state directory (SQLite database, local librarian) under
``.bench/upload/``, and counts the ``fsync`` calls it makes.  When that
is more than an upload may list (`MAX_UPLOAD_IMAGES`), an upload of as
many images as the bound allows is timed too.

Target (``issues show 18``): 10,000 manifests are processed in under
10 s, or refused with one line by a documented bound; the upload at the
bound must be processed in under 10 s as well.  They are marked PASS
or FAIL; the exit status is 0 unless something crashed, or, with
``--check``, the target is missed.  Results go to
``.bench/results-upload.json``.
"""

__all__ = [
    "main",
]

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from bench import common

TARGET_MANIFESTS = 10_000
TARGET_SECONDS = 10.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _blob(directory, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(directory, f"blobs-sha256-{digest}"), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_upload(directory, count):
    """An OCI upload of ``count`` distinct manifests in ``directory``."""
    os.makedirs(directory)
    layer = _blob(directory, b"\x1f\x8b" + b"\0" * 30)
    layer["mediaType"] = OCI_LAYER
    diff_id = "sha256:" + hashlib.sha256(b"layer").hexdigest()
    entries = []
    for n in range(count):
        config = _blob(
            directory,
            json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {"Env": [f"N={n}"]},
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                },
                sort_keys=True,
            ).encode(),
        )
        config["mediaType"] = OCI_CONFIG
        manifest = _blob(
            directory,
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config,
                    "layers": [layer],
                },
                sort_keys=True,
            ).encode(),
        )
        manifest["mediaType"] = OCI_MANIFEST
        manifest["annotations"] = {
            "org.opencontainers.image.ref.name": f"image-{n}"
        }
        entries.append(manifest)
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def _child(state_dir, count):
    """Make a build, file its upload, process it; print one JSON line."""
    import transaction
    from zope.component import getUtility

    from lp.archiveuploader.uploadprocessor import UploadProcessor
    from lp.buildmaster.enums import BuildStatus
    from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
    from lp.services.scripts import setup_services
    from lpoci.run import OWNER_NAME, _quiet_logger, new_build

    setup_services(state_dir)
    recipe = getUtility(IOCIRecipeSet).new(
        "bench", OWNER_NAME, image_name="bench/upload:latest"
    )
    build = new_build(recipe)
    build.updateStatus(BuildStatus.UPLOADING)
    transaction.commit()
    upload_root = os.path.join(state_dir, "uploads")
    fsroot = os.path.join(upload_root, "incoming")
    leaf = build.getUploadDirLeaf(build.build_cookie)
    files = os.path.join(
        fsroot, leaf, str(build.archive.id), build.distribution.name
    )
    write_upload(files, count)
    fsyncs = [0]
    real_fsync = os.fsync

    def counting_fsync(fd):
        fsyncs[0] += 1
        return real_fsync(fd)

    os.fsync = counting_fsync
    started = time.monotonic()
    cpu = time.process_time()
    UploadProcessor(upload_root, log=_quiet_logger()).processBuildUpload(
        fsroot, leaf
    )
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu
    os.fsync = real_fsync
    print(
        json.dumps(
            {
                "manifests": count,
                "status": build.status.name,
                "failure_reason": build.failure_reason,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "fsyncs": fsyncs[0],
                "oci_files": build.getFiles().count(),
            }
        ),
        flush=True,
    )


def _run_child(args, state_dir, count):
    shutil.rmtree(state_dir, ignore_errors=True)
    output = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.upload",
            "--child",
            state_dir,
            "--manifests",
            str(count),
        ],
        env=common.child_env(),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    if not args.keep:
        shutil.rmtree(state_dir, ignore_errors=True)
    return json.loads(output.strip().splitlines()[-1])


def run_benchmark(args):
    from lp.oci.model.ociupload import MAX_UPLOAD_IMAGES

    state_dir = os.path.join(args.dir, "upload")
    counts = [args.manifests]
    if MAX_UPLOAD_IMAGES < args.manifests:
        # What the bound lets through must be quick too.
        counts.append(MAX_UPLOAD_IMAGES)
    runs = [_run_child(args, state_dir, count) for count in counts]
    targets = []
    target = common.target_recorder(targets)
    for run in runs:
        refused = run["status"] == "FAILEDTOUPLOAD" and "\n" not in (
            run["failure_reason"] or ""
        )
        target(
            f"{run['manifests']} manifests processed, or refused in one "
            "line",
            round(run["seconds"], 2),
            TARGET_SECONDS,
            (run["status"] == "FULLYBUILT" or refused)
            and run["seconds"] < TARGET_SECONDS,
            "s",
        )
    return {
        "machine": common.machine(),
        "max_upload_images": MAX_UPLOAD_IMAGES,
        "runs": runs,
        "targets": targets,
    }


def format_report(results):
    lines = []
    for run in results["runs"]:
        lines.append(
            f"Upload processing of {run['manifests']} manifests: "
            f"{run['status']} in {run['seconds']:.2f} s "
            f"({run['cpu_seconds']:.2f} CPU s), {run['fsyncs']} fsyncs, "
            f"{run['oci_files']} files recorded "
            f"({run['seconds'] / run['manifests'] * 1000:.2f} ms a manifest)"
        )
        if run["failure_reason"]:
            lines.append(f"  refused: {run['failure_reason']}")
    lines.append(f"(an upload may list {results['max_upload_images']} images)")
    for t in results["targets"]:
        lines.append(
            f"  {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: "
            f"{t['value']}{t['unit']} (goal < {t['goal']}{t['unit']})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.upload",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--manifests",
        type=int,
        default=TARGET_MANIFESTS,
        help=f"manifests in the upload (default {TARGET_MANIFESTS})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the target is missed",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the state directory"
    )
    parser.add_argument(
        "--dir", default=common.default_bench_dir(), help="cache directory"
    )
    parser.add_argument("--json", help="where the results go")
    parser.add_argument("--child", metavar="STATE_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.manifests)
        return 0
    os.makedirs(args.dir, exist_ok=True)
    args.json = args.json or os.path.join(args.dir, "results-upload.json")
    common.run_and_report(run_benchmark, format_report, args)
    if args.check:
        results = json.load(open(args.json))
        if not all(t["pass"] for t in results["targets"]):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
