# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""`lp-oci run`'s options, recipe and architecture, and push reports.

The commands themselves run in subprocesses in tests/e2e; these check
the pieces they are made of without a state.
"""

__all__ = []

import io
from argparse import Namespace
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from lp.services.job.interfaces.job import JobStatus
from lp.testing import TestCase
from lpbuildd.ociimage.reference import (
    is_registry_host,
    is_repository_path,
    is_tag,
)
from lpoci.registry import due_text, push_report, write_push_summary
from lpoci.run import (
    arch_tag_for,
    default_recipe_name,
    option_problem,
    recipe_name_from,
)

DIGEST = "sha256:" + "ab" * 32


def run_args(**kwargs):
    values = dict(
        archive=None,
        sample=True,
        recipe=None,
        registry="http://127.0.0.1:5000",
        image="team/app",
        tag=["edge", "v1.0_rc-2"],
    )
    values.update(kwargs)
    return Namespace(**values)


class TestReferenceChecks(TestCase):
    def test_repository_paths(self):
        for good in ("app", "team/app", "a/b/c", "a.b_c__d-e", "x" * 255):
            self.assertTrue(is_repository_path(good), good)
        for bad in (
            "",
            "Team/app",
            "team app",
            "team//app",
            "/app",
            "app/",
            "app:latest",
            "app@" + DIGEST,
            "127.0.0.1:5000/app",
            "app\n",
            "-app",
            "x" * 256,
            None,
        ):
            self.assertFalse(is_repository_path(bad), bad)

    def test_tags(self):
        for good in ("edge", "latest", "V1.0", "_x", "1.0-rc_2", "x" * 128):
            self.assertTrue(is_tag(good), good)
        for bad in ("", ".x", "-x", "a b", "a/b", "a:b", "x" * 129, "é"):
            self.assertFalse(is_tag(bad), bad)
        self.assertFalse(is_tag("edge\n"))

    def test_registry_hosts(self):
        for good in ("localhost", "127.0.0.1:5000", "r.example.com", "[::1]"):
            self.assertTrue(is_registry_host(good), good)
        for bad in ("", "ba d", "host:port", "host:", "-host", "a_b.com"):
            self.assertFalse(is_registry_host(bad), bad)


class TestOptionProblem(TestCase):
    """``--image``, ``--tag``, ``--registry``, ``--recipe``: checked first."""

    def test_good_options(self):
        self.assertIsNone(option_problem(run_args()))
        self.assertIsNone(option_problem(run_args(recipe="my-app+1.0")))
        self.assertIsNone(
            option_problem(run_args(registry=None, image=None, tag=None))
        )

    def assertProblem(self, start, **kwargs):
        problem = option_problem(run_args(**kwargs))
        self.assertIsNotNone(problem, kwargs)
        self.assertTrue(problem.startswith(start), problem)
        self.assertNotIn("\n", problem)

    def test_bad_image(self):
        for image in ("Bad Name", "Team/app", "r.example.com:443/app", "a:b"):
            self.assertProblem(
                f"--image {image!r} is not a valid repository", image=image
            )

    def test_bad_tag(self):
        for tag in ("x y", ".hidden", "-x", "a" * 129, "edge\r\nX: y"):
            self.assertProblem(
                f"--tag {tag[:100]!r} is not a valid tag", tag=["edge", tag]
            )

    def test_bad_registry(self):
        self.assertProblem(
            "--registry 'ftp://example.com': The registry URL must be an "
            "http or https URL",
            registry="ftp://example.com",
        )
        self.assertProblem(
            "--registry 'http://u:p@example.com': The registry URL may not "
            "contain credentials",
            registry="http://u:p@example.com",
        )
        for registry in ("http://h\r\n", "http://h\t", "http://hé"):
            self.assertProblem(
                f"--registry {registry!r} holds control or non-ASCII",
                registry=registry,
            )
        for registry in ("http://ba d", "http://host:port", "http://a_b"):
            self.assertProblem(
                f"--registry {registry!r} does not name a registry host",
                registry=registry,
            )

    def test_bad_recipe(self):
        for recipe in ("Upper", "-x", "a/b", "a b", "x" * 65, ""):
            self.assertProblem(
                f"--recipe {recipe!r} is not a valid name", recipe=recipe
            )


class TestRecipeNames(TestCase):
    """One recipe per image, unless ``--recipe`` says otherwise."""

    def test_named_after_the_image_pushed(self):
        self.assertEqual("team-app", default_recipe_name(run_args()))
        self.assertEqual(
            "a-b.c-d",
            default_recipe_name(run_args(image="a/b.c__d", sample=False)),
        )

    def test_sample(self):
        self.assertEqual(
            "sample",
            default_recipe_name(run_args(registry=None, image=None)),
        )

    def test_archive_file_name(self):
        def name(archive):
            return default_recipe_name(
                run_args(archive=archive, sample=False, image=None)
            )

        self.assertEqual("ubuntu-24.04", name("/tmp/Ubuntu_24.04.tar.gz"))
        self.assertEqual("app", name("images/app.oci.tar.zst"))
        self.assertEqual("app", name("app.tgz"))
        # Nothing usable: the default recipe.
        self.assertEqual("run", name("/tmp/.tar"))
        self.assertEqual("run", name("/tmp/____.tar"))

    def test_recipe_name_from(self):
        self.assertEqual("x" * 64, recipe_name_from("x" * 100))
        self.assertEqual("a-b", recipe_name_from("--A  B--"))
        self.assertIsNone(recipe_name_from("/"))


class TestArchTags(TestCase):
    """A build's ``arch_tag`` is its image's, in Debian's names."""

    def test_arch_tags(self):
        for platform, arch_tag in (
            ({"os": "linux", "architecture": "amd64"}, "amd64"),
            ({"architecture": "arm64", "variant": "v8"}, "arm64"),
            ({"architecture": "arm", "variant": "v7"}, "armhf"),
            ({"architecture": "arm", "variant": "v6"}, "armel"),
            ({"architecture": "386"}, "i386"),
            ({"architecture": "ppc64le"}, "ppc64el"),
            ({"architecture": "s390x"}, "s390x"),
            ({"architecture": "riscv64"}, "riscv64"),
            ({"architecture": "mips64le"}, "mips64le"),
            ({"architecture": "arm64", "variant": "v9"}, "arm64v9"),
            ({"os": "linux"}, None),
            (None, None),
        ):
            self.assertEqual(arch_tag, arch_tag_for(platform), platform)


class TestDueText(TestCase):
    def test_due(self):
        now = datetime(2026, 12, 5, 1, 0, 0, tzinfo=timezone.utc)
        self.assertEqual(
            "due 2026-12-05 01:01:05 UTC (in 1 min 5 s)",
            due_text(now + timedelta(seconds=65), now),
        )
        self.assertEqual(
            "due 2026-12-05 03:00:00 UTC (in 2 h)",
            due_text(now + timedelta(hours=2), now),
        )
        self.assertEqual(
            "due 2026-12-05 00:59:00 UTC (now)",
            due_text(now - timedelta(minutes=1), now),
        )
        self.assertEqual("due now", due_text(None, now))


def fake_job(status=JobStatus.COMPLETED, pushed=True, tags=None):
    rule = SimpleNamespace(
        id=7, registry_url="http://127.0.0.1:5000", image_name="team/app"
    )
    recipe = SimpleNamespace(push_rules=[rule])
    result = {
        "registry_url": "http://127.0.0.1:5000",
        "image_name": "team/app",
        "blobs_uploaded": 4,
        "blobs_mounted": 0,
        "blobs_existing": 1,
        "bytes_uploaded": 5000,
        "manifests": [
            {
                "digest": "sha256:" + "cd" * 32,
                "platform": {"os": "linux", "architecture": "arm64"},
            }
        ],
        "tag": "edge, stable",
        "seconds": 0.5,
    }
    return SimpleNamespace(
        build=SimpleNamespace(recipe=recipe),
        registry_results={"7": result} if pushed else {},
        manifest_list_digests=(
            {"7": {"stable": DIGEST, "edge": DIGEST}} if pushed else {}
        ),
        tags=tags,
        error_summary=None if pushed else "Cannot reach\n the registry",
        job=SimpleNamespace(
            status=status,
            scheduled_start=(
                None
                if pushed
                else datetime(2026, 12, 5, 1, 2, 3, tzinfo=timezone.utc)
            ),
        ),
    )


class TestPushReport(TestCase):
    """The ``registry`` part of ``lp-oci run``: where the build went."""

    def test_pushed(self):
        report = push_report(fake_job())
        self.assertEqual(
            {
                "status": "COMPLETED",
                "error_summary": None,
                "due": None,
                "registry": "127.0.0.1:5000",
                "repository": "team/app",
                "tags": ["edge", "stable"],
                "index_digest": DIGEST,
                "pull": f"127.0.0.1:5000/team/app@{DIGEST}",
                "blobs_uploaded": 4,
                "blobs_mounted": 0,
                "blobs_existing": 1,
                "bytes_uploaded": 5000,
                "manifests": [
                    {
                        "digest": "sha256:" + "cd" * 32,
                        "platform": "linux/arm64",
                    }
                ],
                "seconds": 0.5,
            },
            report,
        )
        out = io.StringIO()
        write_push_summary(report, out)
        self.assertEqual(
            [
                "registry: 127.0.0.1:5000, repository team/app, tags edge, "
                f"stable, index {DIGEST}",
                f"  pull: 127.0.0.1:5000/team/app@{DIGEST}",
                "  4 blobs uploaded (5000 bytes), 0 mounted, 1 already "
                "there, in 0.50 s",
                "  linux/arm64 manifest sha256:" + "cd" * 32,
            ],
            out.getvalue().splitlines(),
        )

    def test_waiting(self):
        report = push_report(
            fake_job(JobStatus.WAITING, pushed=False, tags=["v1"])
        )
        self.assertEqual("WAITING", report["status"])
        self.assertEqual("Cannot reach the registry", report["error_summary"])
        self.assertEqual("2026-12-05T01:02:03+00:00", report["due"])
        self.assertEqual("127.0.0.1:5000", report["registry"])
        self.assertEqual("team/app", report["repository"])
        # The tags it will update.
        self.assertEqual(["v1"], report["tags"])
        self.assertIsNone(report["index_digest"])
        self.assertIsNone(report["pull"])
        out = io.StringIO()
        write_push_summary(report, out)
        lines = out.getvalue().splitlines()
        self.assertEqual(
            "registry: 127.0.0.1:5000, repository team/app, tags v1, "
            "index (not pushed)",
            lines[0],
        )
        self.assertTrue(
            lines[1].startswith(
                "  not pushed: WAITING, lp-oci run-jobs will try again, "
                "due 2026-12-05 01:02:03 UTC"
            ),
            lines[1],
        )
        self.assertEqual(2, len(lines))

    def test_default_tags(self):
        report = push_report(fake_job(JobStatus.FAILED, pushed=False))
        self.assertEqual(["edge"], report["tags"])
        self.assertIsNone(report["due"])
