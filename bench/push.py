# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark the registry push of a build (a report, not a test).

``python -m bench.push`` takes the cached synthetic Docker 25 archive
of `bench.gather` (about 1.2 GB in four layers) and the rebuild archive
of `bench.ingest` (the same base layers, another top layer), built if
missing, or read from ``--image-dir`` (a directory of ``bench.ingest``,
read only).  Against Debian's ``docker-registry`` on loopback, started
as the tests start it (`lp.testing.registry.DockerRegistry`):

1. *end to end*: ``lp-oci run ARCHIVE --registry URL --image
   bench/e2e --json --state DIR`` (``docker save`` replayed on a real
   builder, ingested, pushed), then the same with the rebuild archive:
   the second push's ``bytes_uploaded`` must be the compressed size of
   the changed layer(s) plus the new config (a config changes with its
   layers: a few KB), and nothing else;
2. *fresh pushes*, on the stored blobs of the first build: in each of
   `ROUNDS` rounds, `OCIRegistryClient` (``upload`` then the tag's
   manifest list, as `OCIRegistryUploadJob` does, in a long-lived child
   process, timed in it) and ``skopeo copy oci:LAYOUT docker://...``
   (wall time of the process) of an OCI layout of the same build
   (``lp-oci export --format oci``, unpacked: the same precompressed
   blobs), each to an empty registry of its own (a new port each time,
   so that neither skopeo's blob-info cache nor our push records know
   it), alternating which goes first;
3. after the client's fresh push, the same image to a second repository
   of that registry (every blob mounted), then again to that repository
   (every blob already there).

Pushes are read back with ``skopeo inspect``: skopeo's tag must be the
build's manifest (the very bytes: nothing was recompressed or
rewritten), the client's second repository's tag a manifest list of it.

Targets (issue 8): the client's median fresh push time at most 1.1x
skopeo's; the pushing child's peak RSS under 100 MB; the second
repository gets no layer bytes in under 0.3 s; a re-push sends no layer
bytes; the rebuild sends only the changed layer's bytes.  Results go to
``.bench/results-push.json`` (``results-push-quick.json`` for
``--quick`` and ``--check``, the ~300 MB image, about a minute).
``--profile`` runs the pushing child under py-spy.
"""

__all__ = [
    "main",
]

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

from bench import common
from bench import gather as gather_bench
from bench import ingest as ingest_bench

MB = common.MB
TARGET_RATIO = 1.1
TARGET_PEAK_RSS = 100 * MB
TARGET_MOUNT_SECONDS = 0.3
ROUNDS = 3
TAG = "edge"
ROOT = common.ROOT


def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------ the push child


def _push_child(state_dir, build_id):
    """Push a stored build where stdin says; one JSON line per command.

    Commands (JSON lines): ``{"push": [registry URL, image]}`` and
    ``{"plan": BUILD_ID}`` (the blobs a build pushes, and their
    librarian files).
    """
    import transaction
    from zope.component import getUtility

    from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
    from lp.oci.model.ociregistryclient import (
        OCIRegistryClient,
        make_push_plan,
    )
    from lp.services.librarian.storage import get_librarian_storage
    from lp.services.scripts import setup_services
    from lpoci.registry import configure_push_rule, ensure_secrets_key

    setup_services(state_dir)
    ensure_secrets_key(state_dir)
    builds = getUtility(IOCIRecipeBuildSet)
    build = builds.getByID(int(build_id))
    client = OCIRegistryClient()
    storage = get_librarian_storage()
    _emit({"ready": True, "rss": common.memory()[0]})
    for line in sys.stdin:
        command = json.loads(line)
        if "plan" in command:
            plan = make_push_plan(builds.getByID(int(command["plan"])))
            report = {
                kind: {str(blob.digest): blob.size for blob in blobs}
                for kind, blobs in (
                    ("layers", plan.layers),
                    ("configs", plan.configs),
                )
            }
            report["paths"] = [
                storage.getPath(blob.sha256)
                for blob in plan.layers + plan.configs
            ]
            _emit(report)
            continue
        registry_url, image = command["push"]
        rule = configure_push_rule(build.recipe, registry_url, image)
        rss_before, _ = common.memory()
        # What OCIRegistryUploadJob.run does, without its job row (one
        # per build): upload, commit, update the tag's manifest list.
        started = time.perf_counter()
        (result,) = client.upload(build).values()
        upload_seconds = time.perf_counter() - started
        transaction.commit()
        http_client = client._getHTTPClient(rule)
        try:
            digest = client._uploadManifestListToTag(
                http_client, TAG, result.manifests
            )
        finally:
            http_client.close()
        transaction.commit()
        seconds = time.perf_counter() - started
        rss_after, hwm = common.memory()
        report = result.to_json()
        report.update(
            {
                "seconds": seconds,
                "upload_seconds": upload_seconds,
                "tag_digest": str(digest),
                "rss_before": rss_before,
                "rss_after": rss_after,
                "vm_hwm": hwm,
            }
        )
        _emit(report)
    return 0


class PushChild:
    def __init__(self, state_dir, build_id, profile=None):
        cmd = [sys.executable, "-m", "bench.push", "--push-child"]
        cmd += [state_dir, str(build_id)]
        if profile is not None:
            cmd = [
                os.path.join(os.path.dirname(sys.executable), "py-spy"),
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "--threads",
                "--output",
                profile,
                "--",
            ] + cmd
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=common.child_env(),
            cwd=ROOT,
        )
        self.ready = self._read()

    def _read(self):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                raise RuntimeError(
                    f"the push child exited with {self.proc.returncode}"
                )
            if line.startswith("{"):
                return json.loads(line)

    def command(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------ helpers


class Registries:
    """Fresh registries, each on a port no earlier one had."""

    def __init__(self):
        self.ports = set()

    def start(self):
        from lp.testing.registry import DockerRegistry

        for _ in range(20):
            registry = DockerRegistry()
            registry.start()
            if registry.port not in self.ports:
                self.ports.add(registry.port)
                return registry
            registry.stop()
        raise RuntimeError("no new port for a registry")


def _lp_oci(*args):
    """Run ``lp-oci ARGS --json``: (JSON document, wall time)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", *args],
        capture_output=True,
        env=common.child_env(),
        cwd=ROOT,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"lp-oci {args[0]} failed: {proc.stderr.decode()[-2000:]}"
        )
    return json.loads(proc.stdout), seconds


def _export_layout(state_dir, build_id, layout):
    """Unpack ``lp-oci export --format oci`` of the build into `layout`."""
    archive = layout + ".tar"
    shutil.rmtree(layout, ignore_errors=True)
    _lp_oci(
        "export",
        str(build_id),
        "--state",
        state_dir,
        "--format",
        "oci",
        "-o",
        archive,
        "--json",
    )
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    os.unlink(archive)
    blobs = os.path.join(layout, "blobs", "sha256")
    for name in os.listdir(blobs):
        common.warm(os.path.join(blobs, name))
    return sum(
        os.path.getsize(os.path.join(blobs, name))
        for name in os.listdir(blobs)
    )


def _skopeo_push(layout, registry, image):
    started = time.monotonic()
    proc = subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{layout}",
            f"docker://{registry.host}/{image}:{TAG}",
        ],
        capture_output=True,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {proc.stderr.decode()}")
    return seconds


def _registry_manifest(registry, image, raw=False):
    """The registry's manifest for the image's tag (skopeo inspect)."""
    proc = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{registry.host}/{image}:{TAG}",
        ],
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo inspect failed: {proc.stderr.decode()}")
    return proc.stdout if raw else json.loads(proc.stdout)


# ---------------------------------------------------------- benchmark


def _archives(args, bench_dir, variant):
    if args.image_dir:
        workdir = os.path.abspath(args.image_dir)
        archive = gather_bench.archive_path(workdir, "docker25")
        rebuild = os.path.join(workdir, "docker25-rebuild.tar")
        for path in (archive, rebuild):
            if not os.path.exists(path):
                raise RuntimeError(f"{path} is missing")
        return archive, rebuild
    workdir = os.path.join(bench_dir, variant)
    image = gather_bench.build_image(workdir, variant)
    archive = gather_bench.archive_path(workdir, "docker25")
    rebuild, _ = ingest_bench.build_rebuild_archive(workdir, image)
    return archive, rebuild


def run_benchmark(args):
    bench_dir = os.path.abspath(args.dir)
    variant = "quick" if args.quick else "full"
    archive, rebuild_archive = _archives(args, bench_dir, variant)
    for path in (archive, rebuild_archive):
        common.warm(path)
    push_dir = os.path.join(bench_dir, "push")
    shutil.rmtree(push_dir, ignore_errors=True)
    os.makedirs(push_dir)
    state_dir = os.path.join(push_dir, "state")
    os.makedirs(state_dir)
    results = {
        "variant": variant,
        "machine": common.machine(),
        "archive": archive,
        "rebuild_archive": rebuild_archive,
    }
    registries = Registries()
    opened = []
    child = None
    try:
        # 1. End to end, from docker save to the registry, twice.
        registry = registries.start()
        opened.append(registry)
        e2e = {}
        for label, path in (("first", archive), ("rebuild", rebuild_archive)):
            common.log(f"end to end: lp-oci run {os.path.basename(path)} ...")
            os.sync()
            report, seconds = _lp_oci(
                "run",
                path,
                "--state",
                state_dir,
                "--registry",
                registry.url,
                "--image",
                "bench/e2e",
                "--json",
            )
            e2e[label] = {
                "build_id": report["build_id"],
                "seconds": seconds,
                "registry": report["registry"],
                "bytes_fetched": report["bytes_fetched"],
                "images": report["images"],
            }
            common.log(
                f"  {seconds:.1f} s, {report['registry']['bytes_uploaded']} "
                "bytes uploaded"
            )
        registry.stop()
        opened.remove(registry)
        build_id = e2e["first"]["build_id"]
        (manifest_digest,) = (
            image["manifest_digest"] for image in e2e["first"]["images"]
        )

        layout = os.path.join(push_dir, "layout")
        common.log("exporting the first build as an OCI layout ...")
        layout_bytes = _export_layout(state_dir, build_id, layout)

        profile = (
            os.path.join(push_dir, "profile.txt") if args.profile else None
        )
        child = PushChild(state_dir, build_id, profile)
        plans = {
            label: child.command(plan=e2e[label]["build_id"])
            for label in ("first", "rebuild")
        }
        old = set(plans["first"]["layers"]) | set(plans["first"]["configs"])
        changed = {
            kind: {
                digest: size
                for digest, size in plans["rebuild"][kind].items()
                if digest not in old
            }
            for kind in ("layers", "configs")
        }
        e2e["changed"] = changed
        e2e["expected_bytes_uploaded"] = sum(
            sum(blobs.values()) for blobs in changed.values()
        )
        results["e2e"] = e2e
        blob_bytes = sum(plans["first"]["layers"].values()) + sum(
            plans["first"]["configs"].values()
        )
        # Both copies of the blobs in the page cache (warmed here, not
        # in the pushing process, whose peak RSS is measured).
        for digest in plans["first"]["layers"]:
            common.warm(os.path.join(layout, "blobs", "sha256", digest[7:]))
        for path in plans["first"]["paths"]:
            common.warm(path)

        # 2 and 3: interleaved rounds.
        rounds = []
        for number in range(1, ROUNDS + 1):
            order = (
                ("client", "skopeo") if number % 2 else ("skopeo", "client")
            )
            one = {"order": list(order)}
            for who in order:
                registry = registries.start()
                opened.append(registry)
                image = f"bench/{who}-{number}"
                os.sync()
                if who == "skopeo":
                    one["skopeo_seconds"] = _skopeo_push(
                        layout, registry, image
                    )
                    # The same bytes: skopeo did not rewrite the image.
                    raw = _registry_manifest(registry, image, raw=True)
                    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
                    if digest != manifest_digest:
                        raise RuntimeError(
                            f"skopeo pushed manifest {digest}, "
                            f"not {manifest_digest}"
                        )
                    common.log(
                        f"round {number}: skopeo {one['skopeo_seconds']:.2f} s"
                    )
                else:
                    fresh = child.command(push=[registry.url, image])
                    mounted = child.command(
                        push=[registry.url, f"{image}-second"]
                    )
                    again = child.command(
                        push=[registry.url, f"{image}-second"]
                    )
                    index = _registry_manifest(registry, f"{image}-second")
                    pushed = [m["digest"] for m in index.get("manifests", [])]
                    if pushed != [manifest_digest]:
                        raise RuntimeError(
                            f"{image}-second:{TAG} lists {pushed}, "
                            f"not {manifest_digest}"
                        )
                    one.update(
                        {
                            "fresh": fresh,
                            "second_repository": mounted,
                            "repush": again,
                        }
                    )
                    common.log(
                        f"round {number}: client {fresh['seconds']:.2f} s "
                        f"(second repository {mounted['seconds']:.3f} s, "
                        f"re-push {again['seconds']:.3f} s)"
                    )
                registry.stop()
                opened.remove(registry)
            rounds.append(one)
        child.close()
        child_hwm = max(
            one[k]["vm_hwm"]
            for one in rounds
            for k in ("fresh", "second_repository", "repush")
        )
    finally:
        if child is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()
        for registry in opened:
            registry.stop()
    if not args.keep:
        shutil.rmtree(push_dir, ignore_errors=True)
    median = statistics.median
    results.update(
        {
            "layout_bytes": layout_bytes,
            "layer_count": len(plans["first"]["layers"]),
            "config_bytes": sum(plans["first"]["configs"].values()),
            "blob_bytes": blob_bytes,
            "rounds": rounds,
            "child_rss_ready": child.ready["rss"],
            "child_vm_hwm": child_hwm,
            "median": {
                "client": median(r["fresh"]["seconds"] for r in rounds),
                "client_upload": median(
                    r["fresh"]["upload_seconds"] for r in rounds
                ),
                "skopeo": median(r["skopeo_seconds"] for r in rounds),
                "second_repository": median(
                    r["second_repository"]["seconds"] for r in rounds
                ),
                "repush": median(r["repush"]["seconds"] for r in rounds),
            },
        }
    )
    results["ratio"] = (
        results["median"]["client"] / results["median"]["skopeo"]
    )
    results["targets"] = _targets(results)
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


def _targets(results):
    targets = []
    target = common.target_recorder(targets)
    ratio = results["ratio"]
    target(
        "fresh push: client / skopeo, medians",
        round(ratio, 3),
        f"<= {TARGET_RATIO}",
        ratio <= TARGET_RATIO,
        "x",
    )
    hwm = results["child_vm_hwm"]
    target(
        "pushing process peak RSS",
        round(hwm / MB, 1),
        f"< {TARGET_PEAK_RSS / MB:.0f}",
        hwm < TARGET_PEAK_RSS,
        " MB",
    )
    rounds = results["rounds"]
    # The client mounts layers only; a config (a few KB) is uploaded.
    config_bytes = results["config_bytes"]
    layer_count = results["layer_count"]
    layer_bytes = sum(
        max(0, r["second_repository"]["bytes_uploaded"] - config_bytes)
        for r in rounds
    )
    all_mounted = all(
        r["second_repository"]["blobs_mounted"] == layer_count for r in rounds
    )
    target(
        "second repository: layer bytes sent, all rounds (all mounted)",
        layer_bytes,
        "== 0",
        layer_bytes == 0 and all_mounted,
        " bytes",
    )
    seconds = results["median"]["second_repository"]
    target(
        "second repository: push time, median",
        round(seconds, 3),
        f"< {TARGET_MOUNT_SECONDS}",
        seconds < TARGET_MOUNT_SECONDS,
        " s",
    )
    repush = sum(
        r["repush"]["bytes_uploaded"] + r["repush"]["blobs_uploaded"]
        for r in rounds
    )
    target(
        "re-push: blobs + bytes uploaded (layers and config)",
        repush,
        "== 0",
        repush == 0,
    )
    e2e = results["e2e"]
    sent = e2e["rebuild"]["registry"]["bytes_uploaded"]
    expected = e2e["expected_bytes_uploaded"]
    target(
        "rebuild end to end: bytes uploaded - changed layer and config",
        sent - expected,
        "== 0",
        sent == expected and len(e2e["changed"]["layers"]) == 1,
        " bytes",
    )
    return targets


def _format_report(results):
    machine = results["machine"]
    lines = [
        f"push benchmark ({results['variant']}): "
        f"{results['blob_bytes'] / MB:.0f} MB of blobs "
        f"(OCI layout {results['layout_bytes'] / MB:.0f} MB), "
        f"{machine['cpus']} CPUs, load {machine['load_average'][0]:.2f} "
        f"at start, {machine['load_average_end'][0]:.2f} at the end "
        "(compare ratios, not absolute times)",
        "client = OCIRegistryClient.upload + the tag's manifest list, "
        "timed in the pushing process; skopeo = wall time of skopeo copy "
        "oci:LAYOUT docker://...; each fresh push to an empty registry.",
        "",
    ]
    header = (
        "round",
        "order",
        "client s",
        "skopeo s",
        "ratio",
        "client MB sent",
        "2nd repo s",
        "2nd mounted",
        "2nd B sent",
        "re-push s",
        "re-push MB",
        "RSS MB",
    )
    rows = []
    for number, r in enumerate(results["rounds"], 1):
        fresh, second, again = r["fresh"], r["second_repository"], r["repush"]
        rows.append(
            (
                str(number),
                "/".join(r["order"]),
                f"{fresh['seconds']:.2f}",
                f"{r['skopeo_seconds']:.2f}",
                f"{fresh['seconds'] / r['skopeo_seconds']:.2f}x",
                f"{fresh['bytes_uploaded'] / MB:.1f}",
                f"{second['seconds']:.3f}",
                f"{second['blobs_mounted']}",
                f"{second['bytes_uploaded']}",
                f"{again['seconds']:.3f}",
                f"{again['bytes_uploaded'] / MB:.1f}",
                f"{again['vm_hwm'] / MB:.1f}",
            )
        )
    m = results["median"]
    rows.append(
        (
            "median",
            "",
            f"{m['client']:.2f}",
            f"{m['skopeo']:.2f}",
            f"{results['ratio']:.2f}x",
            "",
            f"{m['second_repository']:.3f}",
            "",
            "",
            f"{m['repush']:.3f}",
            "",
            f"{results['child_vm_hwm'] / MB:.1f}",
        )
    )
    lines.extend(common.table_lines(header, rows))
    e2e = results["e2e"]
    lines.append("")
    for label in ("first", "rebuild"):
        run = e2e[label]
        reg = run["registry"]
        lines.append(
            f"end to end ({label}): lp-oci run {run['seconds']:.1f} s "
            f"(push {reg['seconds']:.2f} s): {reg['blobs_uploaded']} blobs "
            f"uploaded ({reg['bytes_uploaded']} bytes), "
            f"{reg['blobs_mounted']} mounted, {reg['blobs_existing']} "
            "already there"
        )
    changed = e2e["changed"]
    lines.append(
        f"  rebuild: changed layers {sum(changed['layers'].values())} bytes "
        f"({len(changed['layers'])}), new config "
        f"{sum(changed['configs'].values())} bytes"
    )
    lines.append(
        f"second repository: layers are mounted, the config "
        f"({results['config_bytes']} bytes) is uploaded (the client does "
        "not mount configs)"
    )
    lines.append(
        f"pushing process RSS {results['child_rss_ready'] / MB:.1f} MB "
        f"ready, peak {results['child_vm_hwm'] / MB:.1f} MB"
    )
    lines.append("")
    for t in results["targets"]:
        lines.append(
            f"{'PASS' if t['pass'] else 'FAIL'}  {t['name']}: "
            f"{t['value']}{t['unit']} (target {t['goal']})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.push",
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
        "--image-dir",
        help="read docker25.tar and docker25-rebuild.tar from this "
        "directory (as bench.ingest leaves them) instead of the cache",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the pushing process under py-spy",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the state directory and the OCI layout",
    )
    parser.add_argument(
        "--dir", default=common.default_bench_dir(), help="cache directory"
    )
    parser.add_argument("--json", default=None, help="results file")
    parser.add_argument(
        "--push-child",
        nargs=2,
        metavar=("STATE", "BUILD_ID"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.push_child:
        return _push_child(*args.push_child)
    if args.check:
        args.quick = True
    if args.json is None:
        name = "results-push-quick.json" if args.quick else "results-push.json"
        args.json = os.path.join(args.dir, name)
    os.makedirs(args.dir, exist_ok=True)
    return common.run_and_report(run_benchmark, _format_report, args)


if __name__ == "__main__":
    sys.exit(main())
