# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark the web service served by ``lp-oci serve`` (a report).

``python -m bench.webservice`` stores a Docker 25 archive as one
FULLYBUILT build with ``lp-oci run`` in a state directory under
``.bench/webservice/`` (the cached image of `bench.gather`, built if
missing, or the archive ``--archive`` names), starts ``lp-oci serve``
(gunicorn, default workers) on a free loopback port, and measures:

* requests per second for the build entry
  (``/api/devel/~OWNER/+oci-recipe/NAME/+build/ID``) and for its
  ``layers`` sub-resource, from a few client threads, each with its own
  keep-alive ``http.client`` connection, bounded in count and in time;
* the time to stream the largest layer from its ``+files/`` URL (as
  ``getFileUrls`` hands it out) against reading the same librarian file
  straight from disk (the limit): both start with the file's pages
  evicted from the page cache (``posix_fadvise(DONTNEED)``), so both
  read the disk, medians of 5, alternating;
* for reference, the same with the page cache warm, where the limit is
  a memory copy, together with a bare loopback socket fed by
  ``sendfile`` (what loopback TCP allows without HTTP or Python);
* the peak RSS (VmHWM) of the gunicorn workers before and after the
  streaming.

Targets: streaming throughput from disk at least 0.8 of reading from
disk (the warm ratios are reported, not targeted); worker peak
RSS under 150 MB.  ``--check`` is the quick variant (the ~300 MB image,
fewer requests).  Results go to ``.bench/results-webservice.json``
(``results-webservice-check.json`` for ``--check``).
"""

__all__ = [
    "main",
]

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

from bench import common
from bench import gather as gather_bench

MB = common.MB
CHUNK = 1 << 20
TARGET_RATIO = 0.8
TARGET_PEAK_RSS = 150 * MB
REPEATS = 5
# What is timed, in this order in each round: from disk (the file's pages
# evicted first), then with the page cache warm.
MEASUREMENTS = (
    "limit_cold",
    "stream_cold",
    "limit",
    "loopback",
    "stream",
)
ROOT = common.ROOT


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _store_build(archive, state_dir):
    """Run ``lp-oci run ARCHIVE``, then ``lp-oci run-jobs``.

    The jobs store the build's archive checksums, as Launchpad's job
    runner would soon after the build: the entry then states them.
    :return: the build's id.
    """
    common.log(f"storing {os.path.basename(archive)} with lp-oci run ...")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", "run", archive]
        + ["--state", state_dir, "--json"],
        capture_output=True,
        env=common.child_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lp-oci run failed: {proc.stderr.decode()}")
    build_id = json.loads(proc.stdout)["build_id"]
    jobs = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", "run-jobs"]
        + ["--state", state_dir],
        capture_output=True,
        env=common.child_env(),
    )
    if jobs.returncode != 0:
        raise RuntimeError(f"lp-oci run-jobs failed: {jobs.stderr.decode()}")
    common.log(f"stored in {time.monotonic() - started:.1f} s")
    return build_id


class Server:
    """``lp-oci serve`` (gunicorn) on a free loopback port."""

    def __init__(self, state_dir):
        self.port = _free_port()
        self.root_url = f"http://127.0.0.1:{self.port}/"
        self.log = open(os.path.join(state_dir, "serve.log"), "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lpoci.cli", "serve"]
            + ["--state", state_dir, "--port", str(self.port)],
            env=common.child_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _get(self.port, "/api/devel/")
                if status == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("lp-oci serve did not start")
            time.sleep(0.2)

    def worker_pids(self):
        """The gunicorn workers: the children of the master."""
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/status") as f:
                    for line in f:
                        if line.startswith("PPid:"):
                            if int(line.split()[1]) == self.process.pid:
                                pids.append(int(name))
                            break
            except OSError:
                pass
        return sorted(pids)

    def worker_memory(self):
        """{pid: (VmRSS, VmHWM)} of the workers, in bytes."""
        memory = {}
        for pid in self.worker_pids():
            values = {}
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        key, _, rest = line.partition(":")
                        if key in ("VmRSS", "VmHWM"):
                            values[key] = int(rest.split()[0]) * 1024
            except OSError:
                continue
            memory[pid] = (values.get("VmRSS"), values.get("VmHWM"))
        return memory

    def stop(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            self.log.close()


def _get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _requests_per_second(port, path, threads, count, seconds):
    """Send up to `count` GETs of `path` from `threads` keep-alive
    connections for at most `seconds`; return the figures."""
    lock = threading.Lock()
    state = {"left": count, "done": 0, "errors": 0}
    latencies = []
    deadline = time.monotonic() + seconds

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        try:
            while time.monotonic() < deadline:
                with lock:
                    if state["left"] <= 0:
                        break
                    state["left"] -= 1
                started = time.perf_counter()
                try:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    connection.close()
                    ok = False
                mine.append(time.perf_counter() - started)
                with lock:
                    state["done" if ok else "errors"] += 1
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "path": path,
        "threads": threads,
        "requests": state["done"],
        "errors": state["errors"],
        "seconds": elapsed,
        "rps": state["done"] / elapsed if elapsed else 0.0,
        "latency_median_ms": (
            statistics.median(latencies) * 1000 if latencies else None
        ),
        "latency_p95_ms": (
            latencies[int(len(latencies) * 0.95)] * 1000 if latencies else None
        ),
    }


def _stream(port, path, buffer):
    """GET `path` into `buffer`; return (bytes, seconds)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        total = 0
        while True:
            n = response.readinto(buffer)
            if not n:
                break
            total += n
        return total, time.perf_counter() - started
    finally:
        connection.close()


def _read_file(path, buffer):
    started = time.perf_counter()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            total += n
    return total, time.perf_counter() - started


def _loopback(path, buffer):
    """Send the file over a bare loopback TCP socket with sendfile and
    receive it here: what loopback allows without HTTP or Python."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def send():
            connection, _ = listener.accept()
            with connection, open(path, "rb") as f:
                connection.sendfile(f)

        sender = threading.Thread(target=send)
        sender.start()
        started = time.perf_counter()
        total = 0
        with socket.create_connection(listener.getsockname()) as client:
            while True:
                n = client.recv_into(buffer)
                if not n:
                    break
                total += n
        elapsed = time.perf_counter() - started
        sender.join()
    return total, elapsed


def run_benchmark(args):
    bench_dir = os.path.abspath(args.dir)
    variant = "check" if args.check else "full"
    if args.archive:
        archive = os.path.abspath(args.archive)
    else:
        image_variant = "quick" if args.check else "full"
        workdir = os.path.join(bench_dir, image_variant)
        gather_bench.build_image(workdir, image_variant)
        archive = gather_bench.archive_path(workdir, "docker25")
    state_dir = os.path.join(bench_dir, "webservice", f"state-{variant}")
    id_file = os.path.join(state_dir, "bench-build-id")
    if not os.path.exists(id_file):
        shutil.rmtree(state_dir, ignore_errors=True)
        os.makedirs(state_dir)
        build_id = _store_build(archive, state_dir)
        with open(id_file, "w") as f:
            f.write(str(build_id))
    with open(id_file) as f:
        build_id = f.read().strip()
    requests = args.requests or (300 if args.check else 2000)
    seconds = args.seconds or (15 if args.check else 60)

    common.log("starting lp-oci serve ...")
    server = Server(state_dir)
    try:
        port = server.port
        status, body = _get(port, "/api/devel/oci_recipe_builds")
        entries = [
            e
            for e in json.loads(body)["entries"]
            if e["self_link"].endswith(f"/+build/{build_id}")
        ]
        if status != 200 or not entries:
            raise RuntimeError(f"build {build_id} not in the collection")
        entry = entries[0]
        build_path = urllib.parse.urlsplit(entry["self_link"]).path
        if entry["status"] != "Successfully built":
            raise RuntimeError(f"build {build_id}: {entry['status']}")
        memory_start = server.worker_memory()

        rps = {}
        for name, path in (
            ("entry", build_path),
            ("layers", build_path + "/layers"),
        ):
            _get(port, path)
            common.log(f"GET {path}: {requests} requests ...")
            rps[name] = _requests_per_second(
                port, path, args.threads, requests, seconds
            )

        status, body = _get(port, build_path + "?ws.op=getFileUrls")
        if status != 200:
            raise RuntimeError(f"getFileUrls: {status}")
        file_urls = json.loads(body)
        largest = max(entry["layers"], key=lambda layer: layer["size"])
        digest = largest["digest"].split(":", 1)[1]
        file_url = [u for u in file_urls if u.endswith("/+files/" + digest)][0]
        file_path = urllib.parse.urlsplit(file_url).path
        blob = os.path.join(state_dir, "librarian", digest[:2], digest)
        size = os.path.getsize(blob)
        common.warm(blob)
        buffer = bytearray(CHUNK)
        memory_before = server.worker_memory()
        common.log(f"streaming {file_path} ({size / MB:.0f} MB) ...")
        times = {name: [] for name in MEASUREMENTS}
        for _ in range(REPEATS):
            for name in MEASUREMENTS:
                cold = name.endswith("_cold")
                if cold:
                    common.evict(blob)
                else:
                    common.warm(blob)
                if name.startswith("limit"):
                    n, t = _read_file(blob, buffer)
                elif name.startswith("loopback"):
                    n, t = _loopback(blob, buffer)
                else:
                    n, t = _stream(port, file_path, buffer)
                if n != size:
                    raise RuntimeError(f"{name}: read {n} bytes, not {size}")
                times[name].append(t)
        memory_after = server.worker_memory()
    finally:
        server.stop()
    if not args.keep:
        shutil.rmtree(state_dir, ignore_errors=True)

    median = {name: statistics.median(t) for name, t in times.items()}
    mb_per_s = {name: size / median[name] / MB for name in median}
    ratio = mb_per_s["stream_cold"] / mb_per_s["limit_cold"]

    def peak(memory):
        return max((hwm for _, hwm in memory.values()), default=0)

    streaming = {
        "url": file_url,
        "librarian_path": blob,
        "bytes": size,
        "seconds": median,
        "all_seconds": times,
        "mb_per_s": mb_per_s,
        "ratio": ratio,
        "ratio_warm": mb_per_s["stream"] / mb_per_s["limit"],
        "ratio_to_loopback": mb_per_s["stream"] / mb_per_s["loopback"],
    }
    memory = {
        "workers": len(memory_after),
        "start": {str(p): m for p, m in memory_start.items()},
        "before_streaming": {str(p): m for p, m in memory_before.items()},
        "after_streaming": {str(p): m for p, m in memory_after.items()},
        "peak_before_streaming": peak(memory_before),
        "peak_after_streaming": peak(memory_after),
    }
    results = {
        "variant": variant,
        "machine": common.machine(),
        "archive": archive,
        "build": build_path,
        "requests": rps,
        "streaming": streaming,
        "memory": memory,
    }
    targets = []
    target = common.target_recorder(targets)
    target(
        "largest layer from disk via +files / read from disk",
        round(ratio, 3),
        f">= {TARGET_RATIO}",
        ratio >= TARGET_RATIO,
    )
    errors = sum(r["errors"] for r in results["requests"].values())
    target(
        "GETs of the entry and its layers that failed",
        errors,
        "== 0",
        errors == 0,
    )
    target(
        "worker peak RSS while streaming",
        round(memory["peak_after_streaming"] / MB, 1),
        f"< {TARGET_PEAK_RSS / MB:.0f}",
        memory["peak_after_streaming"] < TARGET_PEAK_RSS,
        "MB",
    )
    results["targets"] = targets
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


def _format_report(results):
    streaming = results["streaming"]
    memory = results["memory"]
    lines = [
        f"web service benchmark ({results['variant']}): "
        f"{results['build']}, {memory['workers']} gunicorn workers, "
        f"{results['machine']['cpus']} CPUs, "
        f"load {results['machine']['load_average'][0]:.2f}",
        f"  {'GET':<8} {'requests':>8} {'errors':>6} {'threads':>7} "
        f"{'req/s':>8} {'median ms':>9} {'p95 ms':>7}",
    ]
    for name, r in results["requests"].items():
        lines.append(
            f"  {name:<8} {r['requests']:>8} {r['errors']:>6} "
            f"{r['threads']:>7} {r['rps']:>8.1f} "
            f"{r['latency_median_ms']:>9.1f} {r['latency_p95_ms']:>7.1f}"
        )
    for name in MEASUREMENTS:
        lines.append(
            f"  {name:>13}: {streaming['bytes'] / MB:8.1f} MB in "
            f"{streaming['seconds'][name]:.3f} s = "
            f"{streaming['mb_per_s'][name]:.0f} MB/s"
        )
    lines.append(
        f"  from disk: stream / limit {streaming['ratio']:.3f}; page cache "
        f"warm (reference): stream / limit {streaming['ratio_warm']:.3f}, "
        f"stream / loopback {streaming['ratio_to_loopback']:.3f} "
        f"(loopback: sendfile to a bare socket)"
    )
    lines.append(
        f"  worker peak RSS: {memory['peak_before_streaming'] / MB:.1f} MB "
        f"before streaming, {memory['peak_after_streaming'] / MB:.1f} MB "
        f"after"
    )
    for t in results["targets"]:
        lines.append(
            f"{'PASS' if t['pass'] else 'FAIL'}  {t['name']}: "
            f"{t['value']}{t['unit']} (target {t['goal']})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.webservice",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="quick variant: the ~300 MB image, fewer requests",
    )
    parser.add_argument(
        "--archive",
        help="a Docker archive to store instead of the cached one "
        "(read only)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the state directory (reused by the next run)",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="client threads (default 4)"
    )
    parser.add_argument(
        "--requests", type=int, help="requests per resource (bound)"
    )
    parser.add_argument(
        "--seconds", type=float, help="time bound per resource"
    )
    parser.add_argument(
        "--dir", default=common.default_bench_dir(), help="cache directory"
    )
    parser.add_argument("--json", default=None, help="results file")
    args = parser.parse_args(argv)
    if args.json is None:
        name = (
            "results-webservice-check.json"
            if args.check
            else "results-webservice.json"
        )
        args.json = os.path.join(args.dir, name)
    os.makedirs(args.dir, exist_ok=True)
    return common.run_and_report(run_benchmark, _format_report, args)


if __name__ == "__main__":
    sys.exit(main())
