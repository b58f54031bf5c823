# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci run``: a whole OCI build cycle on loopback.

1. Launchpad side: `setup_services` on the state directory (SQLite and a
   local librarian, kept between runs), an `OCIRecipe` (reused by name)
   and a new `OCIRecipeBuild`.
2. Builder side, in a thread: a real `BuilderServer` on 127.0.0.1 whose
   `OCIBuildManager` replays the archive as ``docker save`` output,
   gathers it into its file cache and completes the build.
3. Build farm side: `BuilderWorker.status()` is polled and handed to
   `OCIRecipeBuildBehaviour.handleStatus`, which collects the files of
   the OCI upload, fetching only the layers the librarian lacks.
4. Upload processing: `UploadProcessor.processBuildUpload` runs
   `OCIRecipeUpload.process`, which records the files; the build is
   FULLYBUILT.

The report (``--json``: one JSON document) lists every image and layer
and whether each layer was ``fetched`` or ``reused``.
"""

__all__ = [
    "RunError",
    "build_on_builder",
    "collect_build",
    "make_sample_archive",
    "new_build",
    "run_main",
]

import json
import logging
import os
import shutil
import tempfile
import threading
import time

import transaction
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.archiveuploader.uploadprocessor import UploadProcessor
from lp.buildmaster.enums import BuildStatus, WorkerBuilderStatus
from lp.buildmaster.interactor import BuilderWorker, BuilderWorkerError
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.interfaces.processor import (
    IProcessorSet,
    ProcessorNotFound,
)
from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
from lp.registry.interfaces.distribution import IDistributionSet
from lp.registry.interfaces.distroseries import NoSuchDistroSeries
from lp.registry.interfaces.person import IPersonSet
from lp.services.scripts import setup_services
from lpbuildd.builder import BuilderServer
from lpbuildd.oci import OCIBuildManager, OCIGatherError
from lpbuildd.testing.backend import ReplayBackend

OWNER_NAME = "lp-oci"
DISTRIBUTION_NAME = "ubuntu"
SERIES_NAME = "noble"
ARCH_TAG = "amd64"
IMAGE_NAME = "lp-oci/run:latest"
SAMPLE_IMAGE_NAME = "lp-oci/sample:latest"

# Seconds between status() calls, and before giving up on a builder.
POLL_INTERVAL = 0.05
POLL_TIMEOUT = 3600


class RunError(Exception):
    """The run failed; the message is one line for the user."""


def make_sample_archive(path):
    """Write a small deterministic Docker 25+ ``docker save`` archive.

    Three layers of seeded text (no network, same bytes every time), so
    that a second run finds every layer in the librarian.
    """
    # Imported here: only --sample needs the archive builder.
    from lpbuildd.tests.archivebuilder import (
        docker25_classic,
        make_image,
        make_layer,
    )

    image = make_image(
        layers=[
            make_layer(seed=1, size=256 * 1024),
            make_layer(seed=2, size=64 * 1024),
            make_layer(seed=3),
        ],
        tags=(SAMPLE_IMAGE_NAME,),
    )
    docker25_classic([image]).write(path)
    return path


def build_on_builder(builder, build_cookie, archive, build_dir, name):
    """The builder side: gather ``archive`` and complete the build.

    :return: The `GatherResult`, or None if gathering failed (the build
        is then complete with PACKAGEFAIL and the reason in its log).
    """
    builder.startBuild(build_cookie)
    try:
        result = OCIBuildManager(
            builder, ReplayBackend(archive), name, build_dir
        ).gatherResults()
    except OCIGatherError as e:
        builder.log(f"{e}\n")
        builder.buildComplete("PACKAGEFAIL")
        return None
    except Exception as e:
        builder.log(f"Gathering failed: {type(e).__name__}: {e}\n")
        builder.buildComplete("PACKAGEFAIL")
        raise
    builder.buildComplete("OK")
    return result


def collect_build(
    behaviour,
    logger,
    progress=None,
    poll_interval=POLL_INTERVAL,
    timeout=POLL_TIMEOUT,
):
    """The build farm side: poll the builder until the build is handled.

    :return: The upload directory, or None if the build failed.
    """
    worker = behaviour._worker
    deadline = time.monotonic() + timeout
    last = None
    while True:
        status = worker.status()
        builder_status = status.get("builder_status")
        if progress is not None and builder_status != last:
            progress(f"build farm: builder is {builder_status.split('.')[-1]}")
            last = builder_status
        if builder_status == WorkerBuilderStatus.WAITING:
            return behaviour.handleStatus(status, logger)
        behaviour.handleStatus(status, logger)
        if time.monotonic() > deadline:
            raise BuildDaemonError("Timed out waiting for the builder")
        time.sleep(poll_interval)


def _quiet_logger():
    logger = logging.getLogger("lp.oci.scripts.run")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def _report(gather_result, build, behaviour):
    images = []
    for image in behaviour.images:
        layers = []
        for layer in image.layers:
            transfer = behaviour.transfers.get(layer.digest)
            layers.append(
                {
                    "digest": str(layer.digest),
                    "diff_id": str(layer.diff_id),
                    "size": layer.descriptor.size,
                    "media_type": layer.descriptor.media_type,
                    "transfer": transfer[0] if transfer else "foreign",
                }
            )
        images.append(
            {
                "manifest_digest": str(image.manifest.digest),
                "config_digest": str(image.config.digest),
                "platform": image.platform,
                "layers": layers,
            }
        )
    return {
        "format": gather_result.format,
        "build_id": build.id,
        "images": images,
        "bytes_fetched": behaviour.bytes_fetched,
        "bytes_reused": behaviour.bytes_reused,
    }


def _write_summary(report, build, stdout):
    stdout.write(
        f"build {report['build_id']}: {build.status.name} "
        f"({report['format']})\n"
    )
    for image in report["images"]:
        stdout.write(
            f"  {image['platform']} manifest {image['manifest_digest']}\n"
            f"    config {image['config_digest']}\n"
        )
        for layer in image["layers"]:
            stdout.write(
                f"    {layer['transfer']:>7} {layer['digest']} "
                f"{layer['size']} bytes\n"
            )
    stdout.write(
        f"bytes fetched: {report['bytes_fetched']}\n"
        f"bytes reused: {report['bytes_reused']}\n"
    )


def _get_distro_arch_series():
    """ubuntu/noble/amd64, made on first use (as 0002-build-farm.sql does)."""
    distribution = getUtility(IDistributionSet).getByName(DISTRIBUTION_NAME)
    if distribution is None:
        distribution = getUtility(IDistributionSet).new(
            DISTRIBUTION_NAME, DISTRIBUTION_NAME.capitalize()
        )
    try:
        series = distribution.getSeries(SERIES_NAME)
    except NoSuchDistroSeries:
        series = distribution.newSeries(SERIES_NAME)
    try:
        return series.getDistroArchSeries(ARCH_TAG)
    except NotFoundError:
        pass
    try:
        processor = getUtility(IProcessorSet).getByName(ARCH_TAG)
    except ProcessorNotFound:
        processor = getUtility(IProcessorSet).new(ARCH_TAG, ARCH_TAG)
    return series.newArch(ARCH_TAG, processor)


def new_build(recipe):
    """A new build of ``recipe``, requested by its owner."""
    requester = getUtility(IPersonSet).getByName(recipe.owner_name)
    if requester is None:
        requester = getUtility(IPersonSet).new(recipe.owner_name)
    return getUtility(IOCIRecipeBuildSet).new(
        requester, recipe, _get_distro_arch_series()
    )


def _get_recipe(name):
    recipe_set = getUtility(IOCIRecipeSet)
    recipe = recipe_set.getByName(OWNER_NAME, name)
    if recipe is None:
        recipe = recipe_set.new(name, OWNER_NAME, image_name=name)
    return recipe


def _run(archive, recipe_name, image_name, work_dir, logger, progress):
    build = new_build(_get_recipe(recipe_name))
    transaction.commit()
    progress(f"launchpad: created build {build.id}")
    behaviour = OCIRecipeBuildBehaviour(
        build, upload_root=os.path.join(work_dir, "uploads")
    )
    cache_dir = os.path.join(work_dir, "cache")
    build_dir = os.path.join(work_dir, "build")
    os.makedirs(cache_dir)
    os.makedirs(build_dir)
    server = BuilderServer(cache_dir)
    url = server.start()
    worker = BuilderWorker(url)
    builder_outcome = {}

    def builder_side():
        try:
            builder_outcome["result"] = build_on_builder(
                server.builder,
                behaviour.build_cookie,
                archive,
                build_dir,
                image_name,
            )
        except BaseException as e:
            builder_outcome["error"] = e

    try:
        progress(f"builder: listening on {url}, gathering {archive}")
        thread = threading.Thread(target=builder_side, name="builder")
        thread.start()
        behaviour.setBuilder(None, worker)
        # The builder starts asynchronously; wait until it has.
        while thread.is_alive() and server.builder.build_id is None:
            time.sleep(0.01)
        try:
            upload_path = collect_build(behaviour, logger, progress)
        except (BuilderWorkerError, BuildDaemonError) as e:
            transaction.abort()
            build.failure_reason = str(e)
            build.updateStatus(BuildStatus.FAILEDTOBUILD)
            transaction.commit()
            raise RunError(f"build {build.id} FAILEDTOBUILD: {e}") from None
        finally:
            thread.join()
    finally:
        worker.close()
        server.stop()
    if "error" in builder_outcome:
        raise builder_outcome["error"]
    if upload_path is None:
        raise RunError(
            f"build {build.id} {build.status.name}: {build.failure_reason}"
        )
    progress(
        f"build farm: fetched {behaviour.bytes_fetched} layer bytes, "
        f"reused {behaviour.bytes_reused}"
    )
    UploadProcessor(
        os.path.dirname(os.path.dirname(upload_path)), log=logger
    ).processBuildUpload(
        os.path.dirname(upload_path), os.path.basename(upload_path)
    )
    if build.status != BuildStatus.FULLYBUILT:
        raise RunError(
            f"build {build.id} {build.status.name}: {build.failure_reason}"
        )
    progress(f"upload: build {build.id} is {build.status.name}")
    return _report(builder_outcome["result"], build, behaviour), build


def run_main(args, stdout, stderr):
    """The ``lp-oci run`` command; see the module docstring."""
    if args.sample == bool(args.archive):
        stderr.write("lp-oci: error: give either an archive or --sample\n")
        return 2
    if args.archive and not os.path.isfile(args.archive):
        stderr.write(f"lp-oci: error: no such archive: {args.archive}\n")
        return 1
    logger = _quiet_logger()

    def progress(line):
        if not args.json:
            stdout.write(line + "\n")
            stdout.flush()

    setup_services(args.state)
    work_dir = tempfile.mkdtemp(prefix="lp-oci-run-")
    try:
        if args.sample:
            archive = make_sample_archive(os.path.join(work_dir, "sample.tar"))
            recipe_name, image_name = "sample", SAMPLE_IMAGE_NAME
        else:
            archive = os.path.abspath(args.archive)
            recipe_name, image_name = "run", IMAGE_NAME
        try:
            report, build = _run(
                archive, recipe_name, image_name, work_dir, logger, progress
            )
        except (RunError, BuilderWorkerError, BuildDaemonError) as e:
            transaction.abort()
            stderr.write(f"lp-oci: error: {' '.join(str(e).split())}\n")
            return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if args.json:
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    else:
        _write_summary(report, build, stdout)
    return 0 if build.status == BuildStatus.FULLYBUILT else 1
