# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A build backend that replays an archive as `docker save` output.

What `lp-oci run` gives `OCIBuildManager` instead of a build container,
and what the tests use to drive it: ``docker save NAME`` streams the
archive through a real subprocess and a pipe, as docker would; or, with
``seekable=True`` (what `lp-oci run` uses: the image *is* that file),
answers with the archive file itself, which `gather` then reads as it
reads ``lp-oci gather ARCHIVE``, verifying layers in parallel.
"""

__all__ = [
    "ReplayBackend",
    "SavedArchive",
]

import os
import shutil
import subprocess


class ReplayBackend:
    """Answers ``docker save NAME`` with an archive file's bytes.

    The archive is streamed by a real subprocess through a pipe, as
    ``docker save`` would stream it; `exit_status` makes that process
    fail after writing everything.  ``ctr ... content ls`` answers
    `content_listing` if given, and fails as a missing command would
    otherwise.

    :param seekable: answer ``docker save`` with a `SavedArchive` (the
        file itself, opened) instead of a pipe.
    :param root: a directory that stands for the build environment's
        root, for ``path_exists``, ``listdir`` and ``copy_out`` (for
        instance ``<root>/var/lib/docker/image/...``); without it the
        environment has no files.
    """

    def __init__(
        self,
        archive_path,
        exit_status=0,
        content_listing=None,
        seekable=False,
        root=None,
    ):
        self.archive_path = archive_path
        self.exit_status = exit_status
        self.content_listing = content_listing
        self.seekable = seekable
        self.root = root
        self.commands = []

    def _local(self, path):
        if self.root is None:
            return None
        return os.path.join(self.root, os.path.normpath(path).lstrip("/"))

    def path_exists(self, path):
        local = self._local(path)
        return local is not None and os.path.exists(local)

    def listdir(self, path):
        return sorted(os.listdir(self._local(path)))

    def copy_out(self, source_path, target_path):
        shutil.copyfile(self._local(source_path), target_path)

    def run(self, args, get_output=False, return_process=False, **kwargs):
        self.commands.append(list(args))
        if args[:1] == ["ctr"] and args[-2:] == ["content", "ls"]:
            if self.content_listing is None:
                raise subprocess.CalledProcessError(127, args)
            return self.content_listing.encode("UTF-8")
        if args[:2] != ["docker", "save"]:
            raise ValueError(f"Cannot replay {args!r}")
        if self.seekable and get_output and return_process:
            return SavedArchive(self.archive_path, self.exit_status)
        script = 'cat -- "$1"; exit "$2"'
        proc = subprocess.Popen(
            [
                "sh",
                "-c",
                script,
                "sh",
                self.archive_path,
                str(self.exit_status),
            ],
            stdout=subprocess.PIPE if get_output else None,
        )
        if return_process:
            return proc
        out, _ = proc.communicate()
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, args)
        return out


class SavedArchive:
    """A finished ``docker save`` whose output is a file on disk.

    Quacks like the `subprocess.Popen` that `OCIBuildManager` reads:
    ``stdout`` is the archive opened unbuffered (a regular file, so
    `gather` may read its members where they lie), ``wait`` returns
    ``exit_status`` and ``kill`` has nothing to stop.
    """

    def __init__(self, path, exit_status=0):
        self.stdout = open(path, "rb", buffering=0)
        self.returncode = None
        self._exit_status = exit_status

    def wait(self):
        self.returncode = self._exit_status
        return self.returncode

    def poll(self):
        return self.wait()

    def kill(self):
        pass
