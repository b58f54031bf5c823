# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Benchmark `gather` on a large synthetic image (a report, not a test).

``python -m bench.gather`` (``make bench``; run from the top of the
tree) builds, once, a synthetic image of about 1.2 GB in four
uncompressed layers (630, 420, 162 MB and 20 KB), each mostly real
files read from /usr plus about 20% seeded random data, and saves it
in four archive formats:

* ``docker24``: legacy ``docker save`` (Docker 1.10-24);
* ``docker25``: Docker 25+ ``docker save``, classic store
  (uncompressed ``blobs/sha256/<diff_id>`` layers, index.json,
  manifest.json with LayerSources);
* ``skopeo``: podman/skopeo ``docker-archive:``;
* ``oci-gzip``: an OCI archive with gzip layers (containerd style; the
  layers are kept byte-exact by `gather`).

Layers are written streaming (tarfile into a file, hashing as it goes)
and the archives by the tests' archive builder
(`lpbuildd.tests.archivebuilder`), which streams the layer files into
them; all is cached under ``.bench/`` at the top of the tree and
rebuilt only if missing.  It then measures, with the input in the page
cache and taking the median of ``--runs`` runs:

* `gather` from each file (in a subprocess: wall time, input MB/s, peak
  RSS from ``wait4``) and, for the Docker 25 and OCI gzip archives,
  from a pipe;
* ``skopeo copy docker-archive:X oci:Y`` on the same archives (and
  ``oci-archive:`` for the OCI one);
* launchpad-buildd's current gather loop (gzip level 9 with file name
  and mtime, ``read(1)`` per byte) on a slice of the largest layer,
  extrapolated to the whole image.

* the ISA-L one-pass floor (`_floor`) for the Docker 25 and OCI gzip
  rows: the layer files' unavoidable work (hashing and deflating, or
  inflating and hashing) with nothing else.

Targets are marked PASS or FAIL; the exit status is 0 unless something
crashed or `gather` produced a wrong image, or ``--check`` is given and
a target (other than the informational old-loop ratio) is missed.
Results go to ``.bench/results.json`` (``.bench/results-quick.json``
for ``--quick``).

``--quick`` uses a ~300 MB image and one run (the targets are set for
the full image: start-up costs weigh more on the small one);
``--formats`` picks archive formats, to iterate faster.
"""

__all__ = [
    "SyntheticImage",
    "archive_path",
    "build_image",
    "main",
]

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import stat
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import (
    MB,
    default_bench_dir,
    log,
    machine,
    run_and_report,
    table_lines,
    target_recorder,
    warm,
)
from lpbuildd.tests.archivebuilder import (
    Image,
    LayerFile,
    docker25_classic,
    legacy_docker_save,
    oci_archive,
    podman_docker_archive,
)

CHUNK = 1 << 20
# Of the layers; the archives have their own (see `build_image`).
SPEC_VERSION = 2
ARCHIVE_SPEC = 2

# Layer sizes (bytes of the uncompressed layer tar, roughly).
VARIANTS = {
    "full": (630 * MB, 420 * MB, 162 * MB, 20 * 1000),
    "quick": (158 * MB, 105 * MB, 40 * MB, 20 * 1000),
}
RANDOM_SHARE = 0.2
RANDOM_SEED = 20260101
SOURCE_ROOTS = (
    "/usr/lib",
    "/usr/share",
    "/usr/bin",
    "/usr/include",
    "/usr/libexec",
    "/usr/sbin",
)
MAX_SOURCE_FILE = 32 << 20
OCI_GZIP_LEVEL = 6

FORMATS = ("docker24", "docker25", "skopeo", "oci-gzip")
FORMAT_TITLES = {
    "docker24": "Docker 24 legacy docker-save",
    "docker25": "Docker 25 classic (OCI layout)",
    "skopeo": "skopeo docker-archive",
    "oci-gzip": "OCI archive, gzip layers",
}
EXPECTED_FORMATS = {
    "docker24": "docker-save",
    "docker25": "docker25-classic",
    "skopeo": "docker-archive",
    "oci-gzip": "oci",
}

TAG = "example.com/bench:latest"
CREATED = "2026-01-01T00:00:00Z"

# gather vs skopeo, measured side by side (issue 12): archives of
# uncompressed layers, which both must compress, and OCI archives of gzip
# layers, which gather keeps but inflates to verify every diff_id (skopeo
# verifies none).
TARGET_SKOPEO_RATIO = {"docker24": 3.0, "docker25": 3.0, "oci-gzip": 2.0}
# Informational (not a --check failure): see `_old_loop`.
TARGET_OLD_LOOP_RATIO = 500.0
TARGET_PEAK_RSS = 100 * MB
TARGET_PIPE_MBPS = 150.0
# Also measured from a pipe (`docker save |`, the builder's case).
PIPE_FORMATS = ("docker25", "oci-gzip")
# With the ISA-L one-pass floor (`_floor`) measured alongside.
FLOOR_FORMATS = ("docker25", "oci-gzip")


# ------------------------------------------------------------ layers


class _HashingWriter:
    """A write-only file that hashes and counts what goes through."""

    def __init__(self, fileobj):
        self._fileobj = fileobj
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self._fileobj.write(data)

    def tell(self):
        return self.size

    def flush(self):
        self._fileobj.flush()

    @property
    def digest(self):
        return "sha256:" + self.hash.hexdigest()


class _RandomReader:
    """`size` seeded random bytes, read in chunks."""

    def __init__(self, rng, size):
        self._rng = rng
        self._remaining = size

    def read(self, n=-1):
        if n < 0 or n > self._remaining:
            n = self._remaining
        self._remaining -= n
        return self._rng.randbytes(n)


def _source_files():
    """Readable regular files under /usr, in a fixed order."""
    for root in SOURCE_ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if (
                    stat.S_ISREG(st.st_mode)
                    and 0 < st.st_size <= MAX_SOURCE_FILE
                    and os.access(path, os.R_OK)
                ):
                    yield path


def _tarinfo(name, size=0, kind=tarfile.REGTYPE, mode=0o644, mtime=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _LayerWriter:
    """Write one layer tar, adding parent directories as needed."""

    def __init__(self, tar):
        self.tar = tar
        self._dirs = set()

    def _parents(self, name):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self._dirs:
                self._dirs.add(parent)
                self.tar.addfile(
                    _tarinfo(parent, kind=tarfile.DIRTYPE, mode=0o755)
                )

    def add(self, name, size, fileobj, mode=0o644):
        self._parents(name)
        self.tar.addfile(_tarinfo(name, size, mode=mode), fileobj)


def _write_layer(path, index, target, sources, rng):
    """Write a layer of about `target` bytes; return (diff_id, size)."""
    tmp = path + ".tmp"
    real = randoms = 0
    count = 0
    with open(tmp, "wb") as raw:
        out = _HashingWriter(raw)
        with tarfile.open(
            fileobj=out,
            mode="w",
            format=tarfile.PAX_FORMAT,
            copybufsize=CHUNK,
        ) as tar:
            layer = _LayerWriter(tar)
            while out.size < target:
                remaining = target - out.size
                if randoms < RANDOM_SHARE * (real + randoms):
                    size = min(
                        rng.randint(256 << 10, 4 << 20),
                        remaining,
                        max(4096, target // 10),  # small layers too
                    )
                    name = f"var/lib/bench/layer{index}/random-{count:05d}"
                    layer.add(name, size, _RandomReader(rng, size))
                    randoms += size
                    count += 1
                    continue
                for source in sources:
                    try:
                        f = open(source, "rb")
                    except OSError:
                        continue
                    with f:
                        st = os.fstat(f.fileno())
                        if st.st_size > remaining:
                            continue
                        layer.add(
                            source.lstrip("/"),
                            st.st_size,
                            f,
                            mode=stat.S_IMODE(st.st_mode),
                        )
                        real += st.st_size
                        break
                else:
                    raise RuntimeError(
                        "ran out of files under /usr to build the image"
                    )
    os.replace(tmp, path)
    return out.digest, out.size, real, randoms


def _gzip_layer(src, dst):
    """Gzip a layer (zlib level 6, no name, mtime 0); return digest, size."""
    tmp = dst + ".tmp"
    with open(src, "rb") as fin, open(tmp, "wb") as raw:
        out = _HashingWriter(raw)
        with gzip.GzipFile(
            filename="",
            mode="wb",
            compresslevel=OCI_GZIP_LEVEL,
            fileobj=out,
            mtime=0,
        ) as gz:
            shutil.copyfileobj(fin, gz, CHUNK)
    os.replace(tmp, dst)
    return out.digest, out.size


class SyntheticImage:
    """The layers of the benchmark image, as files.

    :param layers: dicts: path, diff_id, size, real, random and, for
        the gzip form, gz_path, gz_digest, gz_size.
    """

    def __init__(self, workdir, layers):
        self.workdir = workdir
        self.layers = layers
        self.diff_ids = [layer["diff_id"] for layer in layers]

    @property
    def size(self):
        return sum(layer["size"] for layer in self.layers)

    def archive_image(self, gzip_layers=False):
        """The archive builder's `Image`, its layers read from files."""
        layers = [
            LayerFile(layer["path"], layer["diff_id"], layer["size"])
            for layer in self.layers
        ]
        compressed = None
        if gzip_layers:
            compressed = [
                LayerFile(
                    layer["gz_path"], layer["gz_digest"], layer["gz_size"]
                )
                for layer in self.layers
            ]
        return Image(
            layers,
            tags=(TAG,),
            created=CREATED,
            layer_compression="gzip" if gzip_layers else None,
            compressed_layers=compressed,
        )


# ----------------------------------------------------------- archives


def _write_archive(builder, path):
    """Stream an `ArchiveBuilder` to `path` (via a temporary name)."""
    builder.write(path + ".tmp")
    os.replace(path + ".tmp", path)


def _write_docker24(image, path):
    _write_archive(legacy_docker_save([image.archive_image()]), path)


def _write_docker25(image, path):
    _write_archive(docker25_classic([image.archive_image()]), path)


def _write_skopeo(image, path):
    _write_archive(podman_docker_archive([image.archive_image()]), path)


def _write_oci_gzip(image, path):
    archive = oci_archive(
        [image.archive_image(gzip_layers=True)],
        layer_compression="gzip",
        ref_name=TAG,
    )
    _write_archive(archive, path)


ARCHIVE_WRITERS = {
    "docker24": _write_docker24,
    "docker25": _write_docker25,
    "skopeo": _write_skopeo,
    "oci-gzip": _write_oci_gzip,
}


def archive_path(workdir, fmt):
    return os.path.join(workdir, f"{fmt}.tar")


def build_image(workdir, variant):
    """Build (or reuse) the layers and archives; return the image."""
    os.makedirs(workdir, exist_ok=True)
    meta_path = os.path.join(workdir, "image.json")
    sizes = VARIANTS[variant]
    meta = None
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("spec") != SPEC_VERSION or meta.get("sizes") != list(
            sizes
        ):
            meta = None
    if meta is not None and not all(
        os.path.exists(layer["path"]) and os.path.exists(layer["gz_path"])
        for layer in meta["layers"]
    ):
        meta = None
    if meta is None:
        started = time.monotonic()
        log(f"building the {variant} image layers in {workdir} ...")
        rng = random.Random(RANDOM_SEED)
        sources = _source_files()
        layers = []
        for i, target in enumerate(sizes):
            path = os.path.join(workdir, f"layer{i}.tar")
            diff_id, size, real, randoms = _write_layer(
                path, i, target, sources, rng
            )
            layers.append(
                {
                    "path": path,
                    "diff_id": diff_id,
                    "size": size,
                    "real": real,
                    "random": randoms,
                }
            )
            log(
                f"  layer {i}: {size / MB:.1f} MB "
                f"({randoms / max(real + randoms, 1):.0%} random)"
            )
        log("gzipping the layers for the OCI archive ...")
        with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            futures = []
            for layer in layers:
                layer["gz_path"] = layer["path"] + ".gz"
                futures.append(
                    pool.submit(_gzip_layer, layer["path"], layer["gz_path"])
                )
            for layer, future in zip(layers, futures):
                layer["gz_digest"], layer["gz_size"] = future.result()
        for fmt in FORMATS:
            # Archives from an older set of layers are stale.
            if os.path.exists(archive_path(workdir, fmt)):
                os.unlink(archive_path(workdir, fmt))
        meta = {"spec": SPEC_VERSION, "sizes": list(sizes), "layers": layers}
        with open(meta_path + ".tmp", "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(meta_path + ".tmp", meta_path)
        log(f"layers built in {time.monotonic() - started:.1f} s")
    if meta.get("archives") != ARCHIVE_SPEC:
        # Archives written by an older archive builder are stale.
        for fmt in FORMATS:
            if os.path.exists(archive_path(workdir, fmt)):
                os.unlink(archive_path(workdir, fmt))
        meta["archives"] = ARCHIVE_SPEC
        with open(meta_path + ".tmp", "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(meta_path + ".tmp", meta_path)
    image = SyntheticImage(workdir, meta["layers"])
    for fmt in FORMATS:
        path = archive_path(workdir, fmt)
        if not os.path.exists(path):
            started = time.monotonic()
            ARCHIVE_WRITERS[fmt](image, path)
            log(
                f"wrote {path} ({os.path.getsize(path) / MB:.0f} MB) in "
                f"{time.monotonic() - started:.1f} s"
            )
    return image


# -------------------------------------------------------- measurements


TIME = "/usr/bin/time"


def _run_measured(cmd, feed=None, with_cpu=False):
    """Run `cmd`; return (wall seconds, peak RSS bytes, stdout).

    With ``with_cpu``, a fourth item: the CPU seconds (user + system) of
    the command and every process it waited for.

    The peak RSS comes from GNU time (``%M``, its own ``wait4``): a
    child forked straight from this process would inherit this
    process's RSS high-water mark through ``vfork`` + ``exec``.  Without
    /usr/bin/time, ``wait4`` is used, and the figure is a floor.

    :param feed: a file to pipe into the command through ``cat``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with tempfile.NamedTemporaryFile("r") as rss_file:
            use_time = os.access(TIME, os.X_OK)
            if use_time:
                cmd = [TIME, "-f", "%M", "-o", rss_file.name] + list(cmd)
            started = time.monotonic()
            cat = None
            stdin = subprocess.DEVNULL
            if feed is not None:
                cat = subprocess.Popen(["cat", feed], stdout=subprocess.PIPE)
                stdin = cat.stdout
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err)
            if cat is not None:
                cat.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            if cat is not None:
                cat.wait()
            rss = usage.ru_maxrss * 1024
            cpu = usage.ru_utime + usage.ru_stime
            if use_time:
                lines = rss_file.read().split()
                if proc.returncode == 0:
                    rss = int(lines[-1]) * 1024
        out.seek(0)
        err.seek(0)
        output = out.read().decode(errors="replace")
        errors = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited with {proc.returncode}:\n"
            f"{errors[-2000:]}"
        )
    if with_cpu:
        return wall, rss, output, cpu
    return wall, rss, output


def _gather_once(source, outdir, jobs, pipe=False):
    os.sync()  # no writeback of earlier output during the run
    cmd = [
        sys.executable,
        "-m",
        "bench.gather",
        "--gather-child",
        "-" if pipe else source,
        outdir,
    ]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    try:
        wall, rss, output = _run_measured(cmd, feed=source if pipe else None)
        result = json.loads(output)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    result.update(wall=wall, rss=rss)
    return result


def _check_gather(fmt, image, result):
    """Raise if `gather` got the image wrong; warn about the format name."""
    if result["diff_ids"] != image.diff_ids:
        raise RuntimeError(
            f"gather read {fmt} wrongly: diff_ids {result['diff_ids']}"
        )
    if result["format"] != EXPECTED_FORMATS[fmt]:
        log(
            f"warning: gather called {fmt} {result['format']!r}, "
            f"expected {EXPECTED_FORMATS[fmt]!r}"
        )


def _skopeo_once(transport, source, outdir):
    os.sync()
    cmd = [
        "skopeo",
        "--insecure-policy",
        "copy",
        "--quiet",
        f"{transport}:{source}",
        f"oci:{outdir}",
    ]
    try:
        wall, rss, _ = _run_measured(cmd)
        out_size = sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(outdir)
            for name in names
        )
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return {"wall": wall, "rss": rss, "bytes_out": out_size}


def _summarise(runs, size):
    walls = [r["wall"] for r in runs]
    wall = statistics.median(walls)
    summary = {
        "runs": len(runs),
        "wall": wall,
        "walls": walls,
        "mbps": size / MB / wall,
        "peak_rss": max(r.get("rss") or 0 for r in runs),
        "bytes_out": runs[-1].get("bytes_out"),
    }
    if "seconds" in runs[0]:
        summary["gather_seconds"] = statistics.median(
            r["seconds"] for r in runs
        )
        summary["gather_mbps"] = size / MB / summary["gather_seconds"]
        summary["vm_hwm"] = max(r["vm_hwm"] or 0 for r in runs)
    return summary


def _floor_layer(layer, compressed):
    """The unavoidable work on one layer file; return CPU seconds.

    Uncompressed: read, sha256, ISA-L level 1 deflate (gather's
    setting), sha256 of the output.  gzip: read, sha256, ISA-L inflate,
    sha256 of the output.  No tar parsing, no output file.
    """
    from isal import isal_zlib

    started = time.thread_time()
    raw, out = hashlib.sha256(), hashlib.sha256()
    if compressed:
        codec = isal_zlib.decompressobj(31)
    else:
        codec = isal_zlib.compressobj(1, wbits=31)
    path = layer["gz_path"] if compressed else layer["path"]
    with open(path, "rb", buffering=0) as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            raw.update(data)
            if compressed:
                while data:
                    out.update(codec.decompress(data, 4 * CHUNK))
                    data = codec.unconsumed_tail
            else:
                out.update(codec.compress(data))
    if compressed:
        if "sha256:" + out.hexdigest() != layer["diff_id"]:
            raise RuntimeError(f"floor: wrong diff_id for {path}")
    else:
        out.update(codec.flush())
    return time.thread_time() - started


def _floor(image, compressed, jobs):
    """The ISA-L one-pass floor: `_floor_layer` for every layer, the
    layers spread over `jobs` threads as gather spreads them.

    :return: {"wall": seconds, "cpu": CPU seconds of the work}.
    """
    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        cpu = sum(
            pool.map(
                lambda layer: _floor_layer(layer, compressed), image.layers
            )
        )
    return {"wall": time.monotonic() - started, "cpu": cpu}


def _old_loop(path, slice_bytes, workdir):
    """Time launchpad-buildd's gather loop on a slice of one layer.

    The loop as in lpbuildd/oci.py: the archive streamed with tarfile
    ``r|``, each ``layer.tar`` copied one byte at a time into a
    `gzip.GzipFile` (level 9, file name and mtime in the header).  Only
    the first `slice_bytes` of the first big enough layer are copied.
    :return: (seconds, bytes copied).
    """
    with tarfile.open(path, "r|") as tar:
        for member in tar:
            if not member.name.endswith("layer.tar"):
                continue
            if member.size < slice_bytes:
                continue
            member.size = slice_bytes  # extractfile stops here
            fileobj = tar.extractfile(member)
            name = os.path.join(
                workdir, "{}.tar.gz".format(member.name.split("/")[0])
            )
            started = time.monotonic()
            with gzip.GzipFile(name, "wb") as gzip_layer:
                byte = fileobj.read(1)
                while len(byte) > 0:
                    gzip_layer.write(byte)
                    byte = fileobj.read(1)
            seconds = time.monotonic() - started
            os.unlink(name)
            return seconds, slice_bytes
    raise RuntimeError(f"no layer.tar of {slice_bytes} bytes in {path}")


def run_benchmark(args):
    bench_dir = os.path.abspath(args.dir)
    variant = "quick" if args.quick else "full"
    workdir = os.path.join(bench_dir, variant)
    image = build_image(workdir, variant)
    outroot = os.path.join(bench_dir, "out")
    shutil.rmtree(outroot, ignore_errors=True)
    os.makedirs(outroot)
    jobs = args.jobs or os.cpu_count() or 1
    results = {
        "variant": variant,
        "machine": machine(),
        "jobs": jobs,
        "image": {
            "layers": [
                {
                    "diff_id": layer["diff_id"],
                    "size": layer["size"],
                    "random_share": layer["random"]
                    / max(layer["real"] + layer["random"], 1),
                    "gzip_size": layer["gz_size"],
                }
                for layer in image.layers
            ],
            "size": image.size,
        },
        "formats": {},
    }
    skopeo_transports = {
        "docker24": "docker-archive",
        "docker25": "docker-archive",
        "skopeo": "docker-archive",
        "oci-gzip": "oci-archive",
    }
    have_skopeo = shutil.which("skopeo") is not None and not args.no_skopeo
    for fmt in args.formats:
        path = archive_path(workdir, fmt)
        size = os.path.getsize(path)
        warm(path)
        entry = {"archive": path, "size": size}
        transport = skopeo_transports[fmt]
        tools = ["gather"]
        if fmt in PIPE_FORMATS:
            tools.append("gather_pipe")
        if fmt in FLOOR_FORMATS:
            tools.append("floor")
            for layer in image.layers:
                warm(layer["gz_path" if fmt == "oci-gzip" else "path"])
        if have_skopeo:
            tools.append("skopeo")
        log(f"{fmt}: {', '.join(tools)}, interleaved, x{args.runs} ...")
        # Interleaved, so that the load of a shared machine hits every
        # tool alike; ratios are medians of per-round ratios.
        runs = {tool: [] for tool in tools}
        for i in range(args.runs):
            for tool in tools:
                outdir = os.path.join(outroot, f"{tool}-{fmt}-{i}")
                if tool == "skopeo":
                    result = _skopeo_once(transport, path, outdir)
                elif tool == "floor":
                    result = _floor(image, fmt == "oci-gzip", jobs)
                else:
                    result = _gather_once(
                        path, outdir, args.jobs, pipe=tool == "gather_pipe"
                    )
                    _check_gather(fmt, image, result)
                runs[tool].append(result)
        for tool in tools:
            entry[tool] = _summarise(runs[tool], size)
        entry["gather"]["format"] = runs["gather"][0]["format"]
        entry["gather"]["layer_count"] = runs["gather"][0]["layer_count"]
        gathers = [t for t in tools if t.startswith("gather")]
        if have_skopeo:
            entry["skopeo"]["transport"] = transport
            for tool in gathers:
                entry[tool]["skopeo_ratio"] = statistics.median(
                    s["wall"] / g["wall"]
                    for g, s in zip(runs[tool], runs["skopeo"])
                )
            entry["skopeo_ratio"] = entry["gather"]["skopeo_ratio"]
        if "floor" in runs:
            entry["floor"]["cpu"] = statistics.median(
                r["cpu"] for r in runs["floor"]
            )
            for tool in gathers:
                entry[tool]["floor_ratio"] = statistics.median(
                    g["wall"] / f["wall"]
                    for g, f in zip(runs[tool], runs["floor"])
                )
        results["formats"][fmt] = entry
    if "docker24" in results["formats"]:
        results["old_loop"] = _old_loop_entry(
            args, workdir, outroot, image, results["formats"]["docker24"]
        )
    shutil.rmtree(outroot, ignore_errors=True)
    results["targets"] = _targets(results)
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


def _old_loop_entry(args, workdir, outroot, image, docker24):
    log(f"old gather loop on a {args.slice_mb} MB slice ...")
    seconds, copied = _old_loop(
        archive_path(workdir, "docker24"), int(args.slice_mb * MB), outroot
    )
    rate = copied / seconds
    layer_bytes = image.size
    old = {
        "slice_bytes": copied,
        "slice_seconds": seconds,
        "mbps": rate / MB,
        "extrapolated_seconds": layer_bytes / rate,
        "extrapolated_to_bytes": layer_bytes,
        "compared_with": "gather on docker24 (the format the loop reads)",
    }
    old["ratio"] = old["extrapolated_seconds"] / docker24["gather"]["wall"]
    return old


def _targets(results):
    formats = results["formats"]
    targets = []
    target = target_recorder(targets)

    for fmt, goal in TARGET_SKOPEO_RATIO.items():
        if "skopeo_ratio" not in formats.get(fmt, {}):
            continue
        ratio = formats[fmt]["skopeo_ratio"]
        target(
            f"gather vs skopeo {formats[fmt]['skopeo']['transport']}:, "
            f"{FORMAT_TITLES[fmt]} (x faster)",
            ratio,
            f">= {goal:g}",
            ratio >= goal,
            "x",
        )
    if "old_loop" in results:
        ratio = results["old_loop"]["ratio"]
        target(
            "gather vs old read(1) loop, extrapolated (x faster; "
            "informational)",
            ratio,
            f">= {TARGET_OLD_LOOP_RATIO:g}",
            ratio >= TARGET_OLD_LOOP_RATIO,
            "x",
        )
        targets[-1]["informational"] = True
    peak = max(
        entry[key]["peak_rss"]
        for entry in formats.values()
        for key in ("gather", "gather_pipe")
        if key in entry
    )
    target(
        "gather peak RSS, any format, file or pipe (MB)",
        peak / MB,
        f"< {TARGET_PEAK_RSS / MB:g}",
        peak < TARGET_PEAK_RSS,
        "MB",
    )
    # From a pipe, the archive with uncompressed layers (the classic
    # store's `docker save`); the OCI gzip row is reported, untargeted.
    for fmt in ("docker25",):
        if fmt not in formats:
            continue
        mbps = formats[fmt]["gather_pipe"]["mbps"]
        target(
            f"gather from a pipe, {FORMAT_TITLES[fmt]} (MB/s)",
            mbps,
            f">= {TARGET_PIPE_MBPS:g}",
            mbps >= TARGET_PIPE_MBPS,
            "MB/s",
        )
    return targets


def _format_report(results):
    lines = []
    image = results["image"]
    machine = results["machine"]
    layers = ", ".join(
        f"{layer['size'] / MB:.1f}" for layer in image["layers"]
    )
    lines.append(
        f"Image ({results['variant']}): {image['size'] / MB:.0f} MB in "
        f"{len(image['layers'])} uncompressed layers ({layers} MB), "
        "real /usr files + ~20% seeded random data."
    )
    lines.append(
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}, "
        f"SHA-NI {'yes' if machine['sha_ni'] else 'no'}), Python "
        f"{machine['python']}, {machine['skopeo']}, isal {machine['isal']}; "
        f"gather jobs={results['jobs']}; load average at start "
        f"{machine['load_average'][0]:.2f}, at the end "
        f"{machine['load_average_end'][0]:.2f} (2 = both CPUs busy: "
        "compare ratios, not absolute times)."
    )
    first = next(iter(results["formats"].values()))
    lines.append(
        f"Medians of {first['gather']['runs']} run(s), input in the page "
        "cache; tools interleaved per round; wall and MB/s = whole "
        "process (startup included); vs skopeo = median of per-round "
        "ratios; "
        "in-proc = gather's own GatherResult.seconds; RSS = peak "
        "(max over runs, GNU time %M)."
    )
    lines.append("")
    header = (
        "format",
        "in MB",
        "tool",
        "wall s",
        "MB/s",
        "in-proc s",
        "peak RSS MB",
        "out MB",
        "vs skopeo",
        "floor/gather",
    )
    rows = []
    for fmt, entry in results["formats"].items():
        size = entry["size"] / MB
        for key, tool in (
            ("gather", "gather (file)"),
            ("gather_pipe", "gather (pipe)"),
            ("floor", "ISA-L one-pass floor"),
            (
                "skopeo",
                "skopeo " + entry.get("skopeo", {}).get("transport", ""),
            ),
        ):
            if key not in entry:
                continue
            m = entry[key]
            ratio = ""
            if "skopeo_ratio" in m:
                ratio = f"{m['skopeo_ratio']:.2f}x"
            floor = ""
            if "floor_ratio" in m:
                floor = f"{1 / m['floor_ratio']:.2f}"
            elif key == "floor":
                floor = f"cpu {m['cpu']:.2f} s"
            rows.append(
                (
                    fmt,
                    f"{size:.0f}",
                    tool,
                    f"{m['wall']:.2f}",
                    f"{m['mbps']:.0f}",
                    (
                        f"{m['gather_seconds']:.2f}"
                        if "gather_seconds" in m
                        else ""
                    ),
                    f"{m['peak_rss'] / MB:.1f}" if m["peak_rss"] else "",
                    f"{(m['bytes_out'] or 0) / MB:.0f}",
                    ratio,
                    floor,
                )
            )
    lines.extend(table_lines(header, rows, left=3))
    lines.append(
        "Formats: "
        + "; ".join(f"{k} = {v}" for k, v in FORMAT_TITLES.items())
        + "."
    )
    lines.append(
        "ISA-L one-pass floor: the layer files (not the archive) read, "
        "hashed and deflated at level 1 (uncompressed layers) or "
        "inflated and hashed (gzip layers) in this process, layers "
        "spread over the gather jobs; no tar, no output files; "
        "floor/gather = the floor's wall time over gather's."
    )
    old = results.get("old_loop")
    lines.append("")
    if old is not None:
        lines.append(
            f"Old launchpad-buildd loop (read(1) per byte into gzip level 9): "
            f"{old['slice_bytes'] / MB:.0f} MB slice in "
            f"{old['slice_seconds']:.1f} s = {old['mbps']:.2f} MB/s; "
            f"EXTRAPOLATED to the {old['extrapolated_to_bytes'] / MB:.0f} MB "
            f"of layers: {old['extrapolated_seconds']:.0f} s "
            f"({old['ratio']:.0f}x gather's time on docker24)."
        )
    lines.append("")
    lines.append("Targets:")
    for t in results["targets"]:
        lines.append(
            f"  [{'PASS' if t['pass'] else 'FAIL'}] {t['name']}: "
            f"{t['value']:.2f} (target {t['goal']})"
        )
    return "\n".join(lines)


def missed_targets(results):
    """The names of the targets missed (informational ones aside)."""
    return [
        t["name"]
        for t in results["targets"]
        if not t["pass"] and not t.get("informational")
    ]


def _gather_child(source, outdir, jobs):
    """Run `gather` once and print what it did as JSON (for the parent)."""
    from lpbuildd.ociimage.gather import gather

    if source == "-":
        source = os.fdopen(sys.stdin.fileno(), "rb", buffering=0)
    result = gather(source, outdir, jobs=jobs)
    hwm = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    json.dump(
        {
            "format": result.format,
            "layer_count": result.layer_count,
            "bytes_in": result.bytes_in,
            "bytes_out": result.bytes_out,
            "seconds": result.seconds,
            "vm_hwm": hwm,
            "diff_ids": [
                str(layer.diff_id)
                for image in result.images
                for layer in image.layers
            ],
        },
        sys.stdout,
    )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.gather",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per measurement (3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~300 MB image and one run, for smoke-testing",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if a target is missed (the targets are "
        "set for the full image; add --quick for a fast run of the "
        "machinery)",
    )
    parser.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help=f"archive formats to measure (default {','.join(FORMATS)})",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="gather jobs (CPU count)"
    )
    parser.add_argument(
        "--slice-mb",
        type=float,
        default=None,
        help="MB for the old loop's timed slice (20; 5 quick)",
    )
    parser.add_argument(
        "--no-skopeo", action="store_true", help="skip the skopeo baseline"
    )
    parser.add_argument(
        "--dir", default=default_bench_dir(), help="cache directory"
    )
    parser.add_argument("--json", default=None, help="results file")
    parser.add_argument(
        "--gather-child",
        nargs=2,
        metavar=("SOURCE", "OUTDIR"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.gather_child:
        return _gather_child(*args.gather_child, args.jobs)
    args.formats = [f for f in args.formats.split(",") if f]
    unknown = set(args.formats) - set(FORMATS)
    if unknown or not args.formats:
        parser.error(f"--formats: choose among {', '.join(FORMATS)}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.slice_mb is None:
        args.slice_mb = 5 if args.quick else 20
    if args.json is None:
        name = "results-quick.json" if args.quick else "results.json"
        args.json = os.path.join(args.dir, name)
    results = {}

    def run(args):
        results.update(run_benchmark(args))
        return results

    status = run_and_report(run, _format_report, args)
    missed = missed_targets(results)
    if args.check and missed:
        log(f"--check: {len(missed)} target(s) missed: {'; '.join(missed)}")
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
