# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The `lp-oci` command line.

    lp-oci gather ARCHIVE|- -o OUTDIR [--compression gzip|zstd] [--jobs N]
                  [--json]
    lp-oci run [ARCHIVE | --sample] [--state DIR] [--recipe NAME] [--json]
               [--registry URL --image NAME [--tag TAG]...
               [--credentials FILE]]
    lp-oci run-jobs [--state DIR] [--json]
    lp-oci serve [--state DIR] [--host H] [--port N] [--embedded]
    lp-oci export BUILD_ID [--state DIR] --format oci|docker -o FILE|-
                  [--json]
    lp-oci verify [--state DIR] [--repair] [--json] [--min-age SECONDS]
    lp-oci list [--state DIR] [--json]
    lp-oci show BUILD_ID [--state DIR] [--json]
    lp-oci fetch BUILD_URL -o FILE|- [--format oci|docker]
                 [--anonymous | --credentials FILE] [--json]

Errors are one line on stderr (``lp-oci: error: ...``) and a non-zero
exit status, never a traceback.
"""

__all__ = [
    "main",
]

import argparse
import atexit
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback

from lpoci.export import add_export_parser
from lpoci.failures import debug_enabled, describe
from lpoci.fetch import add_fetch_parser
from lpoci.interrupt import Interrupted, handle_signals
from lpoci.show import add_show_parsers
from lpoci.verify import add_verify_parser
from ocitypes.errors import OCIContentError

EXIT_BAD_INPUT = 1
EXIT_USAGE = 2


class Progress:
    """A one-line progress display, only when stderr is a terminal.

    Redrawn at most every `INTERVAL` seconds of `clock`; callers report
    as often as they like (`gather` does every MiB or so, and at least
    every 0.1 s while it works).
    """

    INTERVAL = 0.2

    def __init__(self, stream, total=None, clock=time.monotonic):
        self.stream = stream
        self.total = total
        self.clock = clock
        self.started = clock()
        self.last = 0.0
        self.enabled = stream.isatty()

    def report(self, phase, done, total):
        """`gather`'s progress callback: (phase, done bytes, total)."""
        if total is not None:
            self.total = total
        self(done)

    def __call__(self, done):
        now = self.clock()
        if not self.enabled or now - self.last < self.INTERVAL:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6) / 1e6
        if self.total:
            line = f"{done * 100 // self.total:3d}% of {_mb(self.total)}"
        else:
            line = f"{_mb(done)} read"
        self.stream.write(f"\r{line}, {rate:.0f} MB/s ")
        self.stream.flush()

    def clear(self):
        if self.enabled and self.last:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _mb(n):
    return f"{n / 1e6:.1f} MB"


def _positive(value):
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def max_jobs():
    """The most compression threads ``--jobs`` may ask for.

    64, or the CPU count on a larger machine: more threads than that
    only add memory (each holds a chunk in flight) and contention.
    """
    return max(64, os.cpu_count() or 1)


def _jobs(value):
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--jobs must be a whole number, not {value!r}"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError("--jobs must be at least 1")
    if n > max_jobs():
        raise argparse.ArgumentTypeError(
            f"--jobs must be at most {max_jobs()}"
        )
    return n


def make_parser():
    parser = argparse.ArgumentParser(
        prog="lp-oci",
        description="Launchpad OCI build results: gather image archives "
        "into OCI uploads.",
    )
    parser.add_argument(
        "--config",
        help="configuration: an instance under configs/ or a .conf file "
        "(default: $LPCONFIG, else development)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_export_parser(commands)
    add_fetch_parser(commands)
    add_show_parsers(commands)
    add_verify_parser(commands)
    gather = commands.add_parser(
        "gather",
        help="read an image archive and write an OCI upload",
        description="Read a docker-save, podman or OCI archive (optionally "
        "gzip/xz/zstd compressed) from a file or '-' (standard input), "
        "verify it, and write an OCI image layout with compressed layers.",
    )
    gather.add_argument("archive", help="archive path, or - for stdin")
    gather.add_argument(
        "-o", "--output", required=True, help="output directory (new)"
    )
    gather.add_argument(
        "--compression",
        choices=("gzip", "zstd"),
        default="gzip",
        help="compression for layers that arrive uncompressed "
        "(default gzip); compressed layers are kept byte-exact",
    )
    gather.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        help="compression threads (default: number of CPUs; at most "
        "64, or the CPU count if larger)",
    )
    gather.add_argument(
        "--json", action="store_true", help="print the summary as JSON"
    )
    gather.set_defaults(func=cmd_gather)
    run = commands.add_parser(
        "run",
        help="run a whole build cycle (builder, build farm, upload) "
        "on loopback",
    )
    run.add_argument("archive", nargs="?", help="archive path")
    run.add_argument(
        "--sample", action="store_true", help="use a sample image made in code"
    )
    run.add_argument("--state", default="var", help="state directory")
    run.add_argument(
        "--recipe",
        metavar="NAME",
        help="the recipe to build (default: one per image: named after "
        "--image, else 'sample' with --sample, else the archive's file "
        "name)",
    )
    run.add_argument("--json", action="store_true", help="print JSON")
    run.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress lines on stderr (--json implies it)",
    )
    run.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also log the build farm's work on stderr: each file "
        "grabbed, retries, warnings",
    )
    run.add_argument(
        "--registry",
        metavar="URL",
        help="push the build to this registry (e.g. http://127.0.0.1:5000)",
    )
    run.add_argument(
        "--image", metavar="NAME", help="repository to push to (--registry)"
    )
    run.add_argument(
        "--tag",
        action="append",
        metavar="TAG",
        help="tag to update (default edge; may be repeated)",
    )
    run.add_argument(
        "--credentials",
        metavar="FILE",
        help='JSON file {"username": ..., "password": ...} for the registry',
    )
    run.set_defaults(func=cmd_run)
    run_jobs = commands.add_parser(
        "run-jobs",
        help="run the registry upload jobs that are ready",
    )
    run_jobs.add_argument("--state", default="var", help="state directory")
    run_jobs.add_argument("--json", action="store_true", help="print JSON")
    run_jobs.set_defaults(func=cmd_run_jobs)
    serve = commands.add_parser(
        "serve",
        help="serve the web service (/api/devel/) and build pages",
    )
    serve.add_argument("--state", default="var", help="state directory")
    serve.add_argument("--host", help="default: [webservice] host")
    serve.add_argument("--port", type=int, help="default: [webservice] port")
    serve.add_argument(
        "--root-url",
        help="the site's URL as clients see it " "(default http://HOST:PORT/)",
    )
    serve.add_argument(
        "--accounts",
        help="file of name:password[:admin] lines for HTTP basic "
        "authentication (default: [webservice] accounts_file)",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        help="gunicorn workers (default: [webservice] workers)",
    )
    serve.add_argument(
        "--embedded",
        action="store_true",
        help="serve from this process (wsgiref) instead of gunicorn",
    )
    serve.set_defaults(func=cmd_serve)
    hash_password = commands.add_parser(
        "hash-password",
        help="print a password hashed for the accounts file "
        "(read from the terminal, or one line of stdin)",
    )
    hash_password.add_argument(
        "--json", action="store_true", help="print JSON"
    )
    hash_password.set_defaults(func=cmd_hash_password)
    return parser


def cmd_gather(args, stdout, stderr):
    from lpbuildd.ociimage.gather import gather

    if args.archive == "-":
        if sys.stdin is None or sys.stdin.isatty():
            # As ``docker load`` does: a terminal is no archive.
            stderr.write(
                "lp-oci: error: requested gather from stdin, but stdin is "
                "a terminal (pipe or redirect an archive into it)\n"
            )
            return EXIT_BAD_INPUT
        source = (
            sys.stdin.buffer.raw
            if hasattr(sys.stdin.buffer, "raw")
            else sys.stdin.buffer
        )
        total = None
    else:
        source = args.archive
        try:
            total = os.path.getsize(source)
        except OSError:
            total = None
    progress = Progress(stderr, total)
    try:
        result = gather(
            source,
            args.output,
            compression=args.compression,
            jobs=args.jobs,
            progress=progress.report,
        )
    finally:
        progress.clear()
    if args.json:
        json.dump(gather_report(result), stdout, indent=2)
        stdout.write("\n")
        return 0
    stdout.write(
        f"format: {result.format}\n"
        f"images: {len(result.images)}\n"
        f"layers: {result.layer_count}\n"
        f"bytes in: {result.bytes_in}\n"
        f"bytes out: {result.bytes_out}\n"
        f"seconds: {result.seconds:.2f}\n"
    )
    for image in result.images:
        stdout.write(
            f"  {image.platform} config {image.config_digest} "
            f"{len(image.layers)} layers {', '.join(_names(image))}\n"
        )
    if result.dropped:
        stdout.write(
            f"skipped: {len(result.dropped)} index entries "
            f"({', '.join(_reasons(result.dropped))})\n"
        )
    return 0


def _names(image):
    return [":".join(p for p in name if p) for name in image.names]


def gather_report(result):
    """The ``gather --json`` document for a `GatherResult`."""
    return {
        "format": result.format,
        "images": [
            {
                "platform": str(image.platform),
                "config_digest": str(image.config_digest),
                "names": _names(image),
                "layers": [
                    {
                        "digest": str(layer.descriptor.digest),
                        "diff_id": str(layer.diff_id),
                        "size": layer.descriptor.size,
                        "media_type": layer.descriptor.media_type,
                    }
                    for layer in image.layers
                ],
            }
            for image in result.images
        ],
        "index": [
            {
                "digest": str(descriptor.digest),
                "media_type": descriptor.media_type,
                "size": descriptor.size,
                "annotations": dict(descriptor.annotations or {}),
            }
            for descriptor in result.index
        ],
        "bytes_in": result.bytes_in,
        "bytes_out": result.bytes_out,
        "seconds": round(result.seconds, 3),
        "skipped": list(result.dropped),
    }


def _reasons(notes):
    counts = {}
    for note in notes:
        reason = note.split(": ", 1)[-1]
        counts[reason] = counts.get(reason, 0) + 1
    return [f"{n} {reason}" for reason, n in sorted(counts.items())]


def state_lock(args, command, stderr):
    """The `StateLock` a command that writes to ``--state`` holds."""
    from lpoci.statelock import StateLock

    def waiting(message):
        stderr.write(f"lp-oci: {message}\n")
        stderr.flush()

    return StateLock(args.state, command, wait=waiting)


def cmd_run(args, stdout, stderr):
    from lpoci.run import run_args_problem, run_main

    problem = run_args_problem(args)
    if problem:
        status, line = problem
        stderr.write(f"lp-oci: error: {line}\n")
        return status
    with state_lock(args, "run", stderr):
        return run_main(args, stdout, stderr)


def cmd_run_jobs(args, stdout, stderr):
    from lpoci.registry import run_jobs_main

    with state_lock(args, "run-jobs", stderr):
        return run_jobs_main(args, stdout, stderr)


def cmd_serve(args, stdout, stderr):
    from lpoci.serve import serve_main

    return serve_main(args, stdout, stderr)


def cmd_hash_password(args, stdout, stderr):
    from lpoci.serve import hash_password_main

    return hash_password_main(args, stdout, stderr)


def main(argv=None, stdout=None, stderr=None):
    """The ``lp-oci`` command; its exit status.

    As the process's command (``argv`` None), a signal arriving once
    the command has finished, while the interpreter shuts down, no
    longer kills the process silently: it ends at once with the
    command's status, its output written.
    """
    try:
        status = _main(argv, stdout, stderr)
    except Interrupted as e:
        # Before the command started (loading the configuration).
        (stderr or sys.stderr).write(f"lp-oci: error: {e}\n")
        status = e.exit_status
    if argv is None:
        _exit_promptly_on_signals(status)
    return status


def _exit_promptly_on_signals(status):
    def handler(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    # The interpreter's finalisation puts back the default action of
    # signals with a Python handler (death by the signal, silently):
    # once the threads are joined (atexit), ignore them instead.
    atexit.register(_ignore_signals)


def _ignore_signals():
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def _main(argv, stdout, stderr):
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    handle_signals()
    # The transaction package logs a failed commit before raising it;
    # the error is reported once, as one line, below.
    txn_log = logging.getLogger("txn")
    txn_log.propagate = False
    if not txn_log.handlers:
        txn_log.addHandler(logging.NullHandler())
    parser = make_parser()
    args = parser.parse_args(argv)
    # Circular import: the configuration is Launchpad's.
    from lp.services.config import ConfigError, load_config

    if args.config:
        # Children (gunicorn workers) read the same configuration.
        os.environ["LPCONFIG"] = (
            os.path.abspath(args.config)
            if (os.path.exists(args.config))
            else args.config
        )
    try:
        # gather, the builder's command, reads no configuration.
        if args.command not in ("gather", "hash-password", "fetch"):
            load_config()
    except ConfigError as e:
        stderr.write(f"lp-oci: error: {e}\n")
        return EXIT_BAD_INPUT
    try:
        return args.func(args, stdout, stderr)
    except BrokenPipeError:
        # The reader went away (``lp-oci ... | head``): not an error.
        _silence_stdout()
        return 0
    except Interrupted as e:
        stderr.write(f"lp-oci: error: {e}\n")
        _exit_now_if_busy(e.exit_status, stdout, stderr)
        return e.exit_status
    except KeyboardInterrupt:
        stderr.write("lp-oci: error: interrupted (SIGINT)\n")
        return 130
    except OCIContentError as e:
        stderr.write(f"lp-oci: error: {e}\n")
        return EXIT_BAD_INPUT
    except Exception as e:
        if debug_enabled():
            traceback.print_exc(file=stderr)
        stderr.write(f"lp-oci: error: {describe(e)}\n")
        return EXIT_BAD_INPUT


def _exit_now_if_busy(status, stdout, stderr):
    """End the process at once if worker threads are still running.

    After an interrupt, a builder thread may still be gathering into a
    work directory that is already removed; waiting for it would delay
    the exit for as long as the gather would take.  The work is cleaned
    up and the database committed by now, so exit without joining.
    """
    busy = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if busy:
        for stream in (stdout, stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)


def _silence_stdout():
    """Point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
