# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Run the patched launchpad-buildd's ``gatherResults`` once (a child).

Run by `bench.upstream` with the interpreter of launchpad-buildd's test
environment, never imported by the project:

    python bench/upstream_gather_child.py TREE ARCHIVE legacy|oci WORKDIR

``TREE`` is a launchpad-buildd tree with the patch series applied.  A
real `lpbuildd.builder.Builder` (its file cache in ``WORKDIR``) and
`OCIBuildManager` are set up as a builder sets them up, except that the
backend's ``docker save`` is ``cat ARCHIVE`` (a pipe, as from docker)
and the backend knows no pulled layers.  Prints one JSON document: the
seconds ``gatherResults`` took, the files it filed (name -> SHA-1) and
this process's CPU seconds.
"""

import configparser
import json
import os
import resource
import subprocess
import sys
import time


class BenchBackend:
    """Runs ``docker save`` as ``cat ARCHIVE``; nothing else exists."""

    def __init__(self, archive):
        self.archive = archive

    def run(self, args, get_output=False, return_process=False, **kwargs):
        if args[:2] == ["docker", "save"] and return_process:
            return subprocess.Popen(
                ["cat", self.archive], stdout=subprocess.PIPE
            )
        raise subprocess.CalledProcessError(1, args)

    def path_exists(self, path):
        return False


def main(tree, archive, mode, workdir):
    sys.path.insert(0, tree)
    from lpbuildd.builder import Builder
    from lpbuildd.oci import OCIBuildManager

    cache = os.path.join(workdir, "filecache")
    home = os.path.join(workdir, "home")
    os.makedirs(cache)
    os.makedirs(home)
    os.environ["HOME"] = home
    config = configparser.ConfigParser()
    config["builder"] = {
        "filecache": cache,
        "sharepath": workdir,
        "architecturetag": "amd64",
    }
    builder = Builder(config)
    manager = OCIBuildManager(builder, "bench")
    manager.name = "bench"
    manager.upload_format = mode
    manager.backend = BenchBackend(archive)
    started = time.monotonic()
    manager.gatherResults()
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump(
        {
            "seconds": seconds,
            "files": builder.waitingfiles,
            "cpu": usage.ru_utime + usage.ru_stime,
            "cat_cpu": children.ru_utime + children.ru_stime,
            "bytes_filed": sum(
                os.path.getsize(builder.cachePath(sha1))
                for sha1 in set(builder.waitingfiles.values())
            ),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
