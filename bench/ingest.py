# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark Launchpad's ingest of an OCI upload (a report, not a test).

``python -m bench.ingest`` (the second half of ``make bench``) takes the
cached synthetic Docker 25 archive of `bench.gather` (about
1.2 GB in four layers; built if missing) and runs two builds on
loopback, each with three processes:

* a builder: a real `BuilderServer` whose `OCIBuildManager` replays the
  archive as ``docker save`` output and gathers it into its file cache
  (timed: the *gather* time), then serves it;
* the Launchpad side, a separate process so that its peak RSS is its
  own: `BuilderWorker` polls the builder, `OCIRecipeBuildBehaviour`
  fetches everything over HTTP and verifies it, `OCIRecipeUpload`
  stores it in the librarian and records the `OCIFile` rows (timed: the
  *ingest* time, from the first ``status()`` to FULLYBUILT), with a
  SQLite database and a local librarian in a fresh state directory
  under ``.bench/ingest/``;
* this process, which only coordinates.

The first build starts from an empty librarian.  The second is a
rebuild whose base layers did not change (the tiny top layer is
replaced by one with other content), ingested into the same state
directory: only the changed layer may be fetched.

Before those, ``lp-oci run ARCHIVE`` itself (gather + fetch + upload
processing, one process and its download processes) is timed against
``lp-oci gather ARCHIVE`` alone, alternately, ``--runs`` times each
(medians; also ``lp-oci gather -`` from a pipe, as a builder reads
``docker save``; a run reads the archive file, as gather alone does);
each run starts from a copy of a state directory a ``--sample`` run
made.  Its ``--json`` phases, and the CPU time of SHA-1 + sha256 over
the fetched bytes measured here, give a table of where the run's time
goes, and the floor: the CPU that gathering, the builder's SHA-1 and
the download's SHA-1 + sha256 must spend, over every CPU.

Targets (``issues show 3`` and ``12``): ``lp-oci run`` takes at most
1.5x ``lp-oci gather`` and peaks under 150 MB RSS; ingest takes under
2x the gather time; the Launchpad side's peak RSS stays under 100 MB
and flat (it grows by less than `TARGET_RSS_GROWTH` while ingesting);
the rebuild's ``bytes_fetched`` equals the compressed size of the
changed layer(s).  They are marked PASS or FAIL; the exit status is 0
unless something crashed, or, with ``--check``, a target is missed.
Results go to ``.bench/results-ingest.json``
(``results-ingest-quick.json`` for ``--quick`` and ``--check``, which
use the ~300 MB image; ``--check`` takes well under a minute).

``--profile`` runs the Launchpad side under py-spy and writes
collapsed stacks beside the state directory.
"""

__all__ = [
    "main",
]

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

from bench import common
from bench import gather as gather_bench

MB = common.MB
TARGET_INGEST_RATIO = 2.0
# ``lp-oci run`` (gather + fetch + upload processing) against ``lp-oci
# gather`` alone on the same archive, measured side by side.
TARGET_RUN_RATIO = 1.5
TARGET_RUN_RSS = 150 * MB
TARGET_PEAK_RSS = 100 * MB
# "Memory stays flat": what the Launchpad side may grow by while
# ingesting the image, whatever its size (a few 1 MiB buffers per
# download thread).
TARGET_RSS_GROWTH = 32 * MB
# The replacement top layer of the rebuild.
REBUILD_SEED = gather_bench.RANDOM_SEED + 1
REBUILD_SPEC = 1
IMAGE_NAME = gather_bench.TAG


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------ the image


def build_rebuild_archive(workdir, image):
    """Write (or reuse) a Docker 25 archive of `image` with a new top layer.

    The base layers are the very files of `image`; the top layer has the
    same size and paths but other random bytes.
    :return: (archive path, the rebuilt `SyntheticImage`).
    """
    meta_path = os.path.join(workdir, "rebuild.json")
    archive = os.path.join(workdir, "docker25-rebuild.tar")
    base = image.layers[:-1]
    meta = None
    if os.path.exists(meta_path) and os.path.exists(archive):
        with open(meta_path) as f:
            meta = json.load(f)
        if (
            meta.get("spec") != REBUILD_SPEC
            or meta.get("base") != [layer["diff_id"] for layer in base]
            or not os.path.exists(meta["top"]["path"])
        ):
            meta = None
    if meta is None:
        started = time.monotonic()
        _log(f"building the rebuild archive {archive} ...")
        top = image.layers[-1]
        path = os.path.join(workdir, "layer-rebuild-top.tar")
        diff_id, size, real, randoms = gather_bench._write_layer(
            path,
            len(base),
            top["size"],
            gather_bench._source_files(),
            random.Random(REBUILD_SEED),
        )
        if diff_id == top["diff_id"]:
            raise RuntimeError("the rebuilt top layer did not change")
        new_top = {
            "path": path,
            "diff_id": diff_id,
            "size": size,
            "real": real,
            "random": randoms,
        }
        rebuilt = gather_bench.SyntheticImage(workdir, base + [new_top])
        gather_bench._write_docker25(rebuilt, archive)
        meta = {
            "spec": REBUILD_SPEC,
            "base": [layer["diff_id"] for layer in base],
            "top": new_top,
        }
        with open(meta_path + ".tmp", "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(meta_path + ".tmp", meta_path)
        _log(f"rebuild archive written in {time.monotonic() - started:.1f} s")
    rebuilt = gather_bench.SyntheticImage(workdir, base + [meta["top"]])
    return archive, rebuilt


# -------------------------------------------------------- the processes


def _builder_child(archive, work_dir, build_cookie):
    """The builder: gather `archive`, serve it until stdin closes.

    Prints one JSON line once the build is WAITING (URL, gather time and
    the layers written) and another (peak RSS) when it stops.
    """
    from lpbuildd.server import BuilderServer
    from lpoci.run import build_on_builder

    cache_dir = os.path.join(work_dir, "cache")
    build_dir = os.path.join(work_dir, "build")
    os.makedirs(cache_dir)
    os.makedirs(build_dir)
    server = BuilderServer(cache_dir)
    url = server.start()
    try:
        started = time.monotonic()
        result = build_on_builder(
            server.builder, build_cookie, archive, build_dir, IMAGE_NAME
        )
        seconds = time.monotonic() - started
        if result is None:
            raise RuntimeError(
                "gathering failed: "
                + server.builder.getLogTail().decode(errors="replace")
            )
        _emit(
            {
                "url": url,
                "gather_seconds": seconds,
                "format": result.format,
                "bytes_in": result.bytes_in,
                "bytes_out": result.bytes_out,
                "files": len(server.builder.waitingfiles),
                "layers": [
                    {
                        "diff_id": str(layer.diff_id),
                        "digest": str(layer.descriptor.digest),
                        "size": layer.descriptor.size,
                    }
                    for image in result.images
                    for layer in image.layers
                ],
                "vm_hwm": common.memory()[1],
            }
        )
        sys.stdin.read()
    finally:
        server.stop()
    _emit({"vm_hwm": common.memory()[1]})
    return 0


def _ingest_child(state_dir, upload_root):
    """The Launchpad side: create a build, then ingest it from a builder.

    Prints the build cookie, reads the builder's URL from stdin, then
    prints what the ingest did as one JSON line.
    """
    import transaction
    from ampoule.commands import Echo
    from twisted.internet import defer
    from zope.component import getUtility

    from lp.archiveuploader.uploadprocessor import UploadProcessor
    from lp.buildmaster.enums import BuildStatus
    from lp.buildmaster.interactor import (
        DOWNLOAD_CONNECTIONS,
        BuilderWorker,
        make_download_process_pool,
    )
    from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
    from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
    from lp.services.scripts import setup_services
    from lpoci.run import (
        OWNER_NAME,
        WORKER_TIMEOUT,
        _quiet_logger,
        collect_build,
        get_builder,
        new_build,
        run_reactor,
    )

    logger = _quiet_logger()
    setup_services(state_dir, schema="create")
    recipes = getUtility(IOCIRecipeSet)
    recipe = recipes.getByName(OWNER_NAME, "bench") or recipes.new(
        "bench", OWNER_NAME, image_name=IMAGE_NAME
    )
    build = new_build(recipe)
    bq = build.queueBuild()
    transaction.commit()
    behaviour = OCIRecipeBuildBehaviour(build, upload_root=upload_root)
    _emit({"build_cookie": behaviour.build_cookie})
    url = sys.stdin.readline().strip()

    timings = {}

    @defer.inlineCallbacks
    def collect(reactor):
        # Downloads run in these processes, outside this one's RSS.  The
        # build farm manager keeps its pool for its whole life, so the
        # children are started and answering before the clock starts, as
        # they would be there.
        pool = make_download_process_pool(min=DOWNLOAD_CONNECTIONS)
        yield pool.start()
        yield defer.gatherResults(
            [
                pool.doWork(Echo, data=b"ready")
                for _ in range(DOWNLOAD_CONNECTIONS)
            ]
        )
        timings["started"] = time.monotonic()
        try:
            builder = get_builder(url)
            bq.markAsBuilding(builder)
            transaction.commit()
            worker = BuilderWorker.makeBuilderWorker(
                url, None, WORKER_TIMEOUT, reactor=reactor, process_pool=pool
            )
            behaviour.setBuilder(builder, worker)
            upload_path = yield collect_build(behaviour, bq)
        finally:
            timings["collected"] = time.monotonic()
            yield pool.stop()
        return upload_path

    rss_before, hwm_before = common.memory()
    upload_path = run_reactor(collect)
    started, collected = timings["started"], timings["collected"]
    if upload_path is None:
        raise RuntimeError(
            f"collecting failed: {build.status.name}: {build.failure_reason}"
        )
    # Stopping the download pool and the reactor is not ingesting: the
    # build farm manager keeps both running.
    processing = time.monotonic()
    UploadProcessor(
        os.path.dirname(os.path.dirname(upload_path)), log=logger
    ).processBuildUpload(
        os.path.dirname(upload_path), os.path.basename(upload_path)
    )
    finished = time.monotonic()
    rss_after, hwm_after = common.memory()
    if build.status != BuildStatus.FULLYBUILT:
        raise RuntimeError(f"build is {build.status.name}")
    files = build.getFiles()
    _emit(
        {
            "build_id": build.id,
            "status": build.status.name,
            "ingest_seconds": (collected - started) + (finished - processing),
            "fetch_seconds": collected - started,
            "upload_seconds": finished - processing,
            "bytes_fetched": behaviour.bytes_fetched,
            "bytes_reused": behaviour.bytes_reused,
            "transfers": {
                str(digest): list(transfer)
                for digest, transfer in behaviour.transfers.items()
            },
            "oci_files": len(list(files)),
            "rss_before": rss_before,
            "hwm_before": hwm_before,
            "rss_after": rss_after,
            "vm_hwm": hwm_after,
        }
    )
    return 0


def _start(args, profile=None):
    cmd = [sys.executable, "-m", "bench.ingest"] + args
    if profile is not None:
        cmd = [
            os.path.join(os.path.dirname(sys.executable), "py-spy"),
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "--output",
            profile,
            "--",
        ] + cmd
    # This checkout's code, not whichever the virtualenv has installed.
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=common.child_env(),
    )


def _read_line(proc, what):
    """The next JSON line from a child (py-spy may print other lines)."""
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise RuntimeError(f"the {what} exited with {proc.returncode}")
        if line.startswith("{"):
            return json.loads(line)


def _finish(proc, what):
    proc.stdin.close()
    rest = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"the {what} exited with {proc.returncode}")
    return rest


def _one_build(archive, state_dir, work_dir, label, profile=None):
    """Gather `archive` on a builder and ingest it into `state_dir`."""
    os.sync()  # no writeback of earlier output during the run
    upload_root = os.path.join(work_dir, "uploads")
    builder_dir = os.path.join(work_dir, f"builder-{label}")
    shutil.rmtree(builder_dir, ignore_errors=True)
    ingest = _start(
        ["--ingest-child", state_dir, upload_root],
        profile=profile and f"{profile}-{label}.txt",
    )
    builder = None
    try:
        cookie = _read_line(ingest, "Launchpad side")["build_cookie"]
        _log(f"{label}: builder gathering {os.path.basename(archive)} ...")
        builder = _start(["--builder-child", archive, builder_dir, cookie])
        built = _read_line(builder, "builder")
        _log(
            f"{label}: gathered in {built['gather_seconds']:.2f} s; "
            "Launchpad side ingesting ..."
        )
        ingest.stdin.write(built["url"] + "\n")
        ingest.stdin.flush()
        ingested = _read_line(ingest, "Launchpad side")
        _finish(ingest, "Launchpad side")
        builder_end = json.loads(_finish(builder, "builder"))
    finally:
        for proc in (ingest, builder):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(builder_dir, ignore_errors=True)
        shutil.rmtree(upload_root, ignore_errors=True)
    built["vm_hwm"] = builder_end["vm_hwm"]
    ratio = ingested["ingest_seconds"] / built["gather_seconds"]
    return {"builder": built, "ingest": ingested, "ratio": ratio}


# ------------------------------------------------------ lp-oci run


def _lp_oci(*args):
    """The command line of this checkout's ``lp-oci``."""
    return [
        sys.executable,
        "-c",
        "import sys; from lpoci.cli import main; sys.exit(main())",
        *args,
    ]


def _hash_cpu_seconds(paths):
    """CPU seconds of SHA-1 and of sha256 over ``paths``.

    :return: (SHA-1 seconds, sha256 seconds, bytes): the download work,
        and (SHA-1) what the builder spends naming the same files.
    """
    spent = {"sha1": 0.0, "sha256": 0.0}
    size = 0
    buffer = bytearray(common.CHUNK)
    view = memoryview(buffer)
    for path in paths:
        hashes = {name: hashlib.new(name) for name in spent}
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buffer)
                if not n:
                    break
                for name, hash in hashes.items():
                    started = time.process_time()
                    hash.update(view[:n])
                    spent[name] += time.process_time() - started
                size += n
    return spent["sha1"], spent["sha256"], size


def measure_run(archive, ingest_dir, runs):
    """Time ``lp-oci run ARCHIVE`` against ``lp-oci gather ARCHIVE``.

    Alternately, ``runs`` times each, in subprocesses (wall time, peak
    RSS and CPU from ``wait4``/GNU time).  Each run starts from a copy
    of a state directory that a ``--sample`` run set up (database made,
    librarian without the image's layers), as a second run on a machine
    would; its ``--json`` phases give the breakdown.  The hashing the
    downloads do is measured apart, on the same bytes, in this process.
    """
    template = os.path.join(ingest_dir, "run-template")
    subprocess.run(
        _lp_oci("run", "--sample", "--quiet", "--state", template),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    state = os.path.join(ingest_dir, "run-state")
    out = os.path.join(ingest_dir, "gather-out")
    gathers, runs_done = [], []
    hashing = None
    for number in range(runs):
        _log(f"run {number + 1}/{runs}: lp-oci gather ...")
        shutil.rmtree(out, ignore_errors=True)
        os.sync()
        wall, rss, _, cpu = gather_bench._run_measured(
            _lp_oci("gather", "--json", "-o", out, archive), with_cpu=True
        )
        shutil.rmtree(out, ignore_errors=True)
        os.sync()
        # As a builder reads ``docker save``: from a pipe.
        pipe_wall, _, _ = gather_bench._run_measured(
            _lp_oci("gather", "--json", "-o", out, "-"), feed=archive
        )
        shutil.rmtree(out, ignore_errors=True)
        gathers.append(
            {"wall": wall, "rss": rss, "cpu": cpu, "pipe_wall": pipe_wall}
        )
        _log(f"run {number + 1}/{runs}: gather {wall:.2f} s; lp-oci run ...")
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(template, state, symlinks=True)
        os.sync()
        wall, rss, output, cpu = gather_bench._run_measured(
            _lp_oci("run", "--json", "--state", state, archive),
            with_cpu=True,
        )
        report = json.loads(output)
        runs_done.append(
            {
                "wall": wall,
                "rss": rss,
                "cpu": cpu,
                "phases": report["phases"],
                "bytes_fetched": report["bytes_fetched"],
            }
        )
        _log(f"run {number + 1}/{runs}: run {wall:.2f} s")
        if hashing is None:
            librarian = os.path.join(state, "librarian")
            paths = [
                os.path.join(librarian, hex[:2], hex)
                for hex in {
                    layer["digest"].split(":", 1)[1]
                    for image in report["images"]
                    for layer in image["layers"]
                    if layer["transfer"] == "fetched"
                }
            ]
            sha1, sha256, size = _hash_cpu_seconds(paths)
            hashing = {
                "cpu_seconds": sha1 + sha256,
                "sha1_cpu_seconds": sha1,
                "sha256_cpu_seconds": sha256,
                "bytes": size,
            }
        shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(template, ignore_errors=True)

    def median(values):
        return statistics.median(values)

    run_wall = median([r["wall"] for r in runs_done])
    gather_wall = median([g["wall"] for g in gathers])
    pipe_wall = median([g["pipe_wall"] for g in gathers])
    phases = {
        name: median([r["phases"][name]["seconds"] for r in runs_done])
        for name in ("gather", "fetch", "processing")
    }
    cpus = os.cpu_count() or 1
    gather_cpu = median([g["cpu"] for g in gathers])
    # What no run can avoid on this machine: the CPU that gathering
    # alone spends, plus the hashing the builder protocol and the
    # librarian require of every fetched byte (the builder names files
    # by SHA-1; the download checks that SHA-1 and the blob's sha256),
    # spread perfectly over every CPU.  Start-up, transfer and the
    # database are left out, so this is a lower bound.
    floor_cpu = (
        gather_cpu
        + 2 * hashing["sha1_cpu_seconds"]
        + hashing["sha256_cpu_seconds"]
    )
    floor_wall = max(floor_cpu / cpus, gather_wall)
    return {
        "runs": runs,
        "gather": gathers,
        "run": runs_done,
        "gather_wall": gather_wall,
        "run_wall": run_wall,
        "ratio": run_wall / gather_wall,
        "gather_pipe_wall": pipe_wall,
        "run_rss": max(r["rss"] for r in runs_done),
        "gather_rss": max(g["rss"] for g in gathers),
        "phases": phases,
        "hashing": hashing,
        "cpus": cpus,
        "gather_cpu": gather_cpu,
        "run_cpu": median([r["cpu"] for r in runs_done]),
        "floor_cpu": floor_cpu,
        "floor_wall": floor_wall,
        "floor_ratio": floor_wall / gather_wall,
    }


def _expected_fetch(first, rebuild):
    """Compressed bytes of the rebuild's layers whose diff_id changed."""
    old = {layer["diff_id"] for layer in first["builder"]["layers"]}
    changed = [
        layer
        for layer in rebuild["builder"]["layers"]
        if layer["diff_id"] not in old
    ]
    old_digests = {
        layer["diff_id"]: layer["digest"]
        for layer in first["builder"]["layers"]
    }
    unstable = [
        layer["diff_id"]
        for layer in rebuild["builder"]["layers"]
        if layer["diff_id"] in old_digests
        and old_digests[layer["diff_id"]] != layer["digest"]
    ]
    return changed, unstable


def run_benchmark(args):
    bench_dir = os.path.abspath(args.dir)
    variant = "quick" if args.quick else "full"
    workdir = os.path.join(bench_dir, variant)
    image = gather_bench.build_image(workdir, variant)
    archive = gather_bench.archive_path(workdir, "docker25")
    rebuild_archive, rebuilt = build_rebuild_archive(workdir, image)
    for path in (archive, rebuild_archive):
        common.warm(path)
    ingest_dir = os.path.join(bench_dir, "ingest")
    state_dir = os.path.join(ingest_dir, "state")
    shutil.rmtree(ingest_dir, ignore_errors=True)
    os.makedirs(ingest_dir)
    profile = os.path.join(ingest_dir, "profile") if args.profile else None
    results = {
        "variant": variant,
        "machine": common.machine(),
        "image": {
            "archive": archive,
            "size": image.size,
            "diff_ids": image.diff_ids,
        },
        "rebuild": {"archive": rebuild_archive, "diff_ids": rebuilt.diff_ids},
        "state_dir": state_dir,
    }
    results["run"] = measure_run(archive, ingest_dir, args.runs)
    results["first"] = _one_build(
        archive, state_dir, ingest_dir, "first", profile
    )
    results["second"] = _one_build(
        rebuild_archive, state_dir, ingest_dir, "rebuild", profile
    )
    changed, unstable = _expected_fetch(results["first"], results["second"])
    results["rebuild"].update(
        {
            "changed_layers": changed,
            "expected_bytes_fetched": sum(layer["size"] for layer in changed),
            "bytes_fetched": results["second"]["ingest"]["bytes_fetched"],
            "base_digests_changed": unstable,
        }
    )
    if not args.keep:
        shutil.rmtree(state_dir, ignore_errors=True)
    results["targets"] = _targets(results)
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


def _targets(results):
    targets = []
    target = common.target_recorder(targets)

    run = results["run"]
    target(
        "lp-oci run / lp-oci gather alone, same archive, medians (x)",
        run["ratio"],
        f"<= {TARGET_RUN_RATIO:g}",
        run["ratio"] <= TARGET_RUN_RATIO,
        "x",
    )
    target(
        "lp-oci run peak RSS (MB)",
        run["run_rss"] / MB,
        f"< {TARGET_RUN_RSS / MB:g}",
        run["run_rss"] < TARGET_RUN_RSS,
        "MB",
    )
    first = results["first"]
    ratio = first["ratio"]
    target(
        "ingest time / gather time, first build (x)",
        ratio,
        f"< {TARGET_INGEST_RATIO:g}",
        ratio < TARGET_INGEST_RATIO,
        "x",
    )
    peak = max(results[k]["ingest"]["vm_hwm"] for k in ("first", "second"))
    target(
        "Launchpad side peak RSS, either build (MB)",
        peak / MB,
        f"< {TARGET_PEAK_RSS / MB:g}",
        peak < TARGET_PEAK_RSS,
        "MB",
    )
    growth = first["ingest"]["vm_hwm"] - first["ingest"]["rss_before"]
    target(
        "Launchpad side RSS growth while ingesting, first build (MB)",
        growth / MB,
        f"< {TARGET_RSS_GROWTH / MB:g}",
        growth < TARGET_RSS_GROWTH,
        "MB",
    )
    rebuild = results["rebuild"]
    target(
        "rebuild bytes_fetched - changed layers' compressed size (bytes)",
        rebuild["bytes_fetched"] - rebuild["expected_bytes_fetched"],
        "== 0",
        rebuild["bytes_fetched"] == rebuild["expected_bytes_fetched"],
        "bytes",
    )
    return targets


def _format_report(results):
    lines = []
    machine = results["machine"]
    image = results["image"]
    lines.append(
        f"Image ({results['variant']}): Docker 25 archive of "
        f"{image['size'] / MB:.0f} MB in {len(image['diff_ids'])} layers; "
        "the rebuild replaces the top layer only."
    )
    lines.append(
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), Python "
        f"{machine['python']}; load average at start "
        f"{machine['load_average'][0]:.2f}, at the end "
        f"{machine['load_average_end'][0]:.2f} (compare ratios, not "
        "absolute times)."
    )
    lines.append(
        "One run each.  gather = OCIBuildManager.gatherResults in the "
        "builder process (docker save replayed from the archive file, into "
        "the file cache); ingest = Launchpad side, another process, from the "
        "first status() to FULLYBUILT: fetch = BuilderWorker downloads + "
        "verification (handleStatus), upload = OCIRecipeUpload.process "
        "(librarian + OCIFile rows).  RSS = VmHWM of that process; "
        "growth = VmHWM at the end - VmRSS before ingesting."
    )
    lines.append("")
    header = (
        "build",
        "gather s",
        "out MB",
        "ingest s",
        "fetch s",
        "upload s",
        "ingest/gather",
        "fetched MB",
        "reused MB",
        "LP RSS MB",
        "growth MB",
        "builder RSS MB",
    )
    rows = []
    for key, title in (("first", "first (empty)"), ("second", "rebuild")):
        built = results[key]["builder"]
        ingested = results[key]["ingest"]
        rows.append(
            (
                title,
                f"{built['gather_seconds']:.2f}",
                f"{built['bytes_out'] / MB:.0f}",
                f"{ingested['ingest_seconds']:.2f}",
                f"{ingested['fetch_seconds']:.2f}",
                f"{ingested['upload_seconds']:.2f}",
                f"{results[key]['ratio']:.2f}x",
                f"{ingested['bytes_fetched'] / MB:.3f}",
                f"{ingested['bytes_reused'] / MB:.0f}",
                f"{ingested['vm_hwm'] / MB:.1f}",
                f"{(ingested['vm_hwm'] - ingested['rss_before']) / MB:.1f}",
                f"{built['vm_hwm'] / MB:.1f}",
            )
        )
    lines.extend(common.table_lines(header, rows))
    rebuild = results["rebuild"]
    lines.append("")
    lines.extend(_format_run(results["run"]))
    lines.append("")
    lines.append(
        f"Rebuild: bytes_fetched {rebuild['bytes_fetched']}, compressed "
        f"size of the changed layer(s) {rebuild['expected_bytes_fetched']} "
        f"({len(rebuild['changed_layers'])} layer(s) with a new diff_id)."
    )
    if rebuild["base_digests_changed"]:
        lines.append(
            "  Unchanged layers compressed to other bytes: "
            + ", ".join(rebuild["base_digests_changed"])
        )
    lines.append("")
    lines.append("Targets:")
    for t in results["targets"]:
        value = t["value"]
        shown = str(value) if isinstance(value, int) else f"{value:.2f}"
        lines.append(
            f"  [{'PASS' if t['pass'] else 'FAIL'}] {t['name']}: "
            f"{shown} (target {t['goal']})"
        )
    return "\n".join(lines)


def _format_run(run):
    """The ``lp-oci run`` row and where its time goes."""
    lines = [
        f"lp-oci run vs lp-oci gather alone, same archive, alternated, "
        f"medians of {run['runs']}: run {run['run_wall']:.2f} s "
        f"(peak RSS {run['run_rss'] / MB:.0f} MB), gather "
        f"{run['gather_wall']:.2f} s (peak RSS "
        f"{run['gather_rss'] / MB:.0f} MB): {run['ratio']:.2f}x.  "
        f"lp-oci gather from a pipe (as a builder reads docker save): "
        f"{run['gather_pipe_wall']:.2f} s.",
    ]
    if "floor_ratio" in run:
        hashing = run["hashing"]
        lines.append(
            f"CPU (user + system, every process): run {run['run_cpu']:.2f} "
            f"s, gather alone {run['gather_cpu']:.2f} s.  Floor of any run "
            f"on {run['cpus']} CPUs: (gather {run['gather_cpu']:.2f} + "
            f"builder SHA-1 {hashing['sha1_cpu_seconds']:.2f} + download "
            f"SHA-1 {hashing['sha1_cpu_seconds']:.2f} + sha256 "
            f"{hashing['sha256_cpu_seconds']:.2f} CPU s) / {run['cpus']} = "
            f"{run['floor_wall']:.2f} s = {run['floor_ratio']:.2f}x gather "
            "alone, before start-up, transfer and the database.  This "
            "run's own CPU, perfectly spread: "
            f"{run['run_cpu'] / run['cpus']:.2f} s = "
            f"{run['run_cpu'] / run['cpus'] / run['gather_wall']:.2f}x."
        )
        if run["floor_ratio"] > TARGET_RUN_RATIO:
            lines.append(
                f"  The {TARGET_RUN_RATIO:g}x target is below that floor "
                "on this machine."
            )
    lines.append(
        "Where the run's time goes (medians; from its --json phases):"
    )
    phases = run["phases"]
    hashing = run["hashing"] or {"cpu_seconds": 0.0, "bytes": 0}
    # The download processes hash in parallel, on at most every CPU.
    hash_wall = hashing["cpu_seconds"] / min(run["cpus"], 4)
    rest = run["run_wall"] - sum(phases.values())
    rows = [
        ("gather (builder: read, verify, compress)", phases["gather"]),
        (
            "fetch: transfer (HTTP on loopback, writes, fsync)",
            max(phases["fetch"] - hash_wall, 0.0),
        ),
        (
            f"fetch: hashing (SHA-1 + sha256 of "
            f"{hashing['bytes'] / MB:.0f} MB: {hashing['cpu_seconds']:.2f} "
            f"CPU s over {min(run['cpus'], 4)} CPUs)",
            min(hash_wall, phases["fetch"]),
        ),
        (
            "upload processing (librarian links, database rows, commit)",
            phases["processing"],
        ),
        ("start-up and the rest (interpreter, Zope, database)", rest),
    ]
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        share = seconds / run["run_wall"] * 100 if run["run_wall"] else 0
        lines.append(f"  {name.ljust(width)}  {seconds:6.2f} s  {share:3.0f}%")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--quick", action="store_true", help="the ~300 MB image"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="the quick variant end to end, as a smoke test",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the Launchpad side under py-spy",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the state directory (database and librarian)",
    )
    parser.add_argument(
        "--dir",
        default=common.default_bench_dir(),
        help="cache directory",
    )
    parser.add_argument("--json", default=None, help="results file")
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="lp-oci run / gather pairs (default 3; 1 for --check)",
    )
    parser.add_argument(
        "--builder-child",
        nargs=3,
        metavar=("ARCHIVE", "WORKDIR", "COOKIE"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--ingest-child",
        nargs=2,
        metavar=("STATE", "UPLOADS"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.builder_child:
        return _builder_child(*args.builder_child)
    if args.ingest_child:
        return _ingest_child(*args.ingest_child)
    if args.check:
        args.quick = True
    if args.runs is None:
        args.runs = 1 if args.check else 3
    # Every child runs this checkout's code.
    os.environ["PYTHONPATH"] = common.child_env()["PYTHONPATH"]
    if args.json is None:
        name = (
            "results-ingest-quick.json"
            if args.quick
            else "results-ingest.json"
        )
        args.json = os.path.join(args.dir, name)
    status = common.run_and_report(run_benchmark, _format_report, args)
    if args.check and status == 0:
        with open(args.json) as f:
            missed = [t for t in json.load(f)["targets"] if not t["pass"]]
        if missed:
            print(f"--check: {len(missed)} target(s) missed", flush=True)
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
