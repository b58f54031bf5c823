# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci run``: a whole OCI build cycle on loopback.

Everything runs on one Twisted reactor, in the main thread:

1. Launchpad side: `setup_services` on the state directory (SQLite and a
   local librarian, kept between runs), an `OCIRecipe` (reused by name:
   ``--recipe``, else one per image, see `default_recipe_name`), a new
   `OCIRecipeBuild`, queued and marked as building on a `Builder` named
   ``lp-oci``.
2. Builder side: a real builder (`lpbuildd.builder.Builder` and its HTTP
   site) listening on 127.0.0.1 on the same reactor; its
   `OCIBuildManager` replays the archive as ``docker save`` output and
   gathers it into the file cache in a thread, as a builder does.
3. Build farm side: `BuilderWorker.status()` is polled and handed to
   `OCIRecipeBuildBehaviour.handleStatus`, which stores the log and
   collects the files of the upload, fetching only the layers the
   librarian lacks (downloads run in an ampoule process pool); then the
   builder is cleaned.
4. Upload processing: the build moves to its first image's architecture
   (`set_build_platform`), then `UploadProcessor.processBuildUpload` runs
   `OCIRecipeUpload.process` on ``incoming/<leaf>`` in its transaction;
   the build is FULLYBUILT.
5. With ``--registry URL --image NAME``: the recipe's one push rule, so
   processing scheduled an `OCIRegistryUploadJob`, which runs once the
   reactor has stopped (`lpoci.registry`); ``--json`` gains
   ``"registry"`` (`lpoci.registry.push_report`), also when it fails.

The report (``--json``: one JSON document) lists every image (with its
names) and layer and whether each layer was ``fetched`` or ``reused``,
and the next steps (`next_steps`).  Options are checked before the
state is touched (`run_args_problem`).
"""

__all__ = [
    "RunError",
    "build_on_builder",
    "collect_build",
    "find_upload",
    "get_builder",
    "new_build",
    "archive_problem",
    "bytes_in_flight",
    "run_args_problem",
    "run_main",
    "run_reactor",
]

import json
import logging
import os
import re
import shlex
from urllib.parse import urlsplit

import transaction
from twisted.internet import defer
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.archiveuploader.uploadprocessor import UploadProcessor
from lp.buildmaster.enums import BuildStatus, WorkerBuilderStatus
from lp.buildmaster.interactor import (
    DOWNLOAD_CONNECTIONS,
    BuilderWorker,
    BuilderWorkerError,
    make_download_process_pool,
)
from lp.buildmaster.interfaces.builder import BuildDaemonError, IBuilderSet
from lp.buildmaster.interfaces.processor import (
    IProcessorSet,
    ProcessorNotFound,
)
from lp.buildmaster.model.buildfarmjobbehaviour import BUILDD_MANAGER_LOG_NAME
from lp.oci.interfaces.ocirecipe import IOCIRecipeSet
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
from lp.oci.interfaces.ociregistrycredentials import (
    OCIRegistryCredentialsURLError,
)
from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
from lp.oci.model.ociregistrycredentials import check_registry_url
from lp.registry.interfaces.distribution import IDistributionSet
from lp.registry.interfaces.distroseries import NoSuchDistroSeries
from lp.registry.interfaces.person import IPersonSet
from lp.services.scripts import setup_services
from lpbuildd.oci import OCIBuildManager, OCIGatherError
from lpbuildd.ociimage.reference import (
    is_registry_host,
    is_repository_path,
    is_tag,
)
from lpbuildd.replay import ReplayBackend
from lpbuildd.server import BuilderServer
from lpoci.interrupt import (
    handle_signals,
    raise_if_interrupted,
    reactor_interrupts,
)
from lpoci.progress import ProgressLogHandler, RunProgress
from lpoci.recovery import (
    fail_owned,
    recover_stranded,
    write_finished_builds,
)
from lpoci.registry import (
    RegistryRunError,
    configure_push_rule,
    ensure_secrets_key,
    platform_text,
    read_credentials_file,
    remove_push_rule,
    run_pending_push,
    write_push_summary,
)
from lpoci.runlock import RunLock
from lpoci.sample import SAMPLE_IMAGE_NAME, write_sample_archive
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint

OWNER_NAME = "lp-oci"
BUILDER_NAME = "lp-oci"
DISTRIBUTION_NAME = "ubuntu"
SERIES_NAME = "noble"
ARCH_TAG = "amd64"
IMAGE_NAME = "lp-oci/run:latest"
# The recipe of a run whose archive's name makes no recipe name.
DEFAULT_RECIPE_NAME = "run"

# Seconds between status() calls, and before giving up on a builder.
POLL_INTERVAL = 0.05
# In `lp-oci run`, which learns at once when gathering ends: polling
# while the builder gathers is only a safety net.
GATHER_POLL_INTERVAL = 1.0
POLL_TIMEOUT = 3600

# Seconds the build farm waits for each answer from the builder.
WORKER_TIMEOUT = 60


class RunError(Exception):
    """The run failed; the message is one line for the user."""


def build_on_builder(
    builder,
    build_cookie,
    archive,
    build_dir,
    name,
    progress=None,
    upload_format="oci",
):
    """The builder side: gather ``archive`` and complete the build.

    Blocking: run it in a thread.  The build must have been started
    (``builder.startBuild``) or is started here.

    :param progress: optional callable(phase, done_bytes, total_bytes),
        passed to `OCIBuildManager`.
    :param upload_format: what Launchpad asked for (see
        `OCIRecipeBuildBehaviour.extraBuildArgs`): "oci", or "legacy" as
        a builder without the patch series would file.

    :return: The `GatherSummary`, or None if gathering failed (the build
        is then complete with PACKAGEFAIL and the reason in its log).
    """
    if builder.build_id is None:
        builder.startBuild(build_cookie)
    try:
        result = OCIBuildManager(
            builder,
            ReplayBackend(archive, seekable=True),
            name,
            build_dir,
            upload_format=upload_format,
            progress=progress,
        ).gatherResults()
    except OCIGatherError as e:
        builder.log(f"{e}\n")
        builder.buildComplete("PACKAGEFAIL")
        return None
    except BaseException as e:
        builder.log(f"Gathering failed: {type(e).__name__}: {e}\n")
        builder.buildComplete("PACKAGEFAIL")
        raise
    builder.buildComplete("OK")
    return result


def _mb(n):
    return f"{n / 1e6:.1f} MB"


def find_upload(behaviour):
    """The leaf ``handleSuccess`` moved to ``incoming``, or None.

    ``<upload_root>/incoming/<leaf>``, the newest leaf for this build;
    the files sit in ``<leaf>/<archive id>/<distribution name>/``.
    """
    incoming = os.path.join(behaviour.upload_root, "incoming")
    if not os.path.isdir(incoming):
        return None
    suffix = "-" + behaviour.build.build_cookie
    leaves = sorted(n for n in os.listdir(incoming) if n.endswith(suffix))
    return os.path.join(incoming, leaves[-1]) if leaves else None


@defer.inlineCallbacks
def collect_build(
    behaviour,
    bq,
    progress=None,
    poll_interval=POLL_INTERVAL,
    timeout=POLL_TIMEOUT,
    reactor=None,
    wake=None,
):
    """The build farm side: poll the builder until the build is handled.

    As the build farm manager does: each status goes to `handleStatus`;
    once the builder is WAITING and the status handled, it is cleaned.

    :param wake: optional Deferred that fires (its result untouched) when
        the build may have ended: the next poll then happens at once, so
        ``poll_interval`` can be long, and polling (a status call and a
        transaction each time) costs the builder little CPU meanwhile.

    :return: A Deferred firing with the upload's leaf directory in
        ``incoming`` (see `find_upload`), or None if the build failed.
    """
    if reactor is None:
        from twisted.internet import reactor
    worker = behaviour._worker
    deadline = reactor.seconds() + timeout
    last = None
    woken = defer.Deferred()
    if wake is not None:

        def wake_up(result):
            if not woken.called:
                woken.callback(None)
            return result

        wake.addBoth(wake_up)
    while True:
        status = yield worker.status()
        builder_status = status.get("builder_status")
        if progress is not None and builder_status != last:
            progress(f"build farm: builder is {builder_status.split('.')[-1]}")
            last = builder_status
        if builder_status not in (
            WorkerBuilderStatus.BUILDING,
            WorkerBuilderStatus.WAITING,
        ):
            raise BuildDaemonError(
                f"Builder is {builder_status} while "
                f"{behaviour.build.build_cookie} should be running"
            )
        yield behaviour.handleStatus(bq, status)
        if builder_status == WorkerBuilderStatus.WAITING:
            yield worker.clean()
            if behaviour.build.status != BuildStatus.UPLOADING:
                return None
            return find_upload(behaviour)
        if reactor.seconds() > deadline:
            raise BuildDaemonError("Timed out waiting for the builder")
        if woken.called:
            yield deferLater(reactor, POLL_INTERVAL, lambda: None)
        else:
            sleep = deferLater(reactor, poll_interval, lambda: None)
            sleep.addErrback(
                lambda failure: failure.trap(defer.CancelledError)
            )
            yield defer.DeferredList(
                [sleep, woken], fireOnOneCallback=True, consumeErrors=True
            )
            if not sleep.called:
                sleep.cancel()


def _quiet_logger():
    logger = logging.getLogger("lpoci.run")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


# The loggers of the OCI model code (registry upload job and client).
OCI_LOG_NAME = "lp.oci"


def _run_logger(progress, verbose):
    """The run's logger; the build farm's also goes to it.

    Silent unless ``verbose``; then INFO and above (retries, warnings,
    each file grabbed) go to stderr through ``progress``.
    """
    logger = _quiet_logger()
    farm = logging.getLogger(BUILDD_MANAGER_LOG_NAME)
    # The registry upload job and client log a failed push; the run
    # reports it in one line of its own.
    oci = logging.getLogger(OCI_LOG_NAME)
    for name in (farm, oci):
        name.propagate = False
    for name in (logger, farm, oci):
        for handler in list(name.handlers):
            if isinstance(handler, ProgressLogHandler):
                name.removeHandler(handler)
    if verbose:
        handler = ProgressLogHandler(progress)
        for name in (logger, farm, oci):
            name.addHandler(handler)
            name.setLevel(logging.INFO)
    else:
        for name in (farm, oci):
            if not name.handlers:
                name.addHandler(logging.NullHandler())
    return logger


# Seconds between redraws of the fetch line while files arrive.
FETCH_PROGRESS_INTERVAL = 0.25

# How a download process names the file it is writing (see
# `lp.buildmaster.downloader.download`): ``.<name>.<random>.part``.
_PART_SUFFIX = ".part"


def bytes_in_flight(directory):
    """The bytes written so far to downloads in progress under ``directory``.

    Downloads write to hidden ``.part`` files renamed when complete; a
    file that is renamed or removed while this looks is skipped.
    """
    total = 0
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            if name.startswith(".") and name.endswith(_PART_SUFFIX):
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
    return total


class _FetchCounter:
    """Bytes fetched: whole files as they complete, plus partial files.

    The download processes report only when a file is complete, so for
    a large layer the line would stand still; while any download is in
    progress, the bytes already written to its ``.part`` file (on disk,
    under ``upload_root``) are counted too, every
    `FETCH_PROGRESS_INTERVAL` seconds.  Once the behaviour knows which
    layers it fetches, their size is the phase's total (``of N MB``).
    """

    def __init__(self, worker, get_phase, behaviour, reactor):
        self._get_phase = get_phase
        self._behaviour = behaviour
        self._upload_root = behaviour.upload_root
        self._active = 0
        self.completed = 0
        self._loop = LoopingCall(self._redraw)
        self._loop.clock = reactor
        get_file = worker.getFile

        def getFile(*args, **kwargs):
            # The first download starts the fetch phase.
            get_phase()
            self._active += 1
            if not self._loop.running:
                self._loop.start(FETCH_PROGRESS_INTERVAL, now=False)
            d = get_file(*args, **kwargs)

            def counted(result):
                self.completed += result.size
                self._redraw()
                return result

            def done(result):
                self._active -= 1
                if not self._active and self._loop.running:
                    self._loop.stop()
                return result

            return d.addCallback(counted).addBoth(done)

        worker.getFile = getFile

    def _redraw(self):
        phase = self._get_phase()
        if phase.seconds is None:
            done = self.completed + bytes_in_flight(self._upload_root)
            # The layers to fetch are known once the manifests are read
            # (the documents, fetched first, are a few kB).
            layers = self._behaviour.bytes_fetched
            phase.total = max(layers, done) if layers else None
            phase.update(done)

    def stop(self):
        if self._loop.running:
            self._loop.stop()


def _platform(descriptor):
    """``os/architecture[/variant]`` of an index entry's platform."""
    return platform_text(descriptor.platform or {}) or None


def _report(gather_result, build, behaviour):
    # The layers' diff_ids, which upload processing read from the
    # configs.
    diff_ids = {str(layer.digest): layer.diff_id for layer in build.layers}
    # The image's names (``docker save``'s tags), as the builder read
    # them.
    names = {
        str(image.config_digest): list(image.names)
        for image in gather_result.images
    }
    images = []
    for image in behaviour.images:
        layers = []
        for layer in image.layers:
            transfer = behaviour.transfers.get(Digest.parse(layer.digest))
            diff_id = diff_ids.get(layer.digest)
            layers.append(
                {
                    "digest": layer.digest,
                    "diff_id": str(diff_id) if diff_id else None,
                    "size": layer.size,
                    "media_type": layer.media_type,
                    "transfer": transfer[0] if transfer else "foreign",
                }
            )
        images.append(
            {
                "manifest_digest": image.descriptor.digest,
                "config_digest": image.config.digest,
                "platform": _platform(image.descriptor),
                "names": names.get(image.config.digest, []),
                "layers": layers,
            }
        )
    return {
        "format": gather_result.format,
        "build_id": build.id,
        "recipe": build.recipe.name,
        "arch_tag": build.arch_tag,
        "title": build.title,
        "images": images,
        "bytes_fetched": behaviour.bytes_fetched,
        "bytes_reused": behaviour.bytes_reused,
    }


def _write_summary(report, build, stdout):
    stdout.write(
        f"build {report['build_id']}: {build.status.name} "
        f"({report['format']}), {build.title}\n"
    )
    for image in report["images"]:
        stdout.write(
            f"  {image['platform']} manifest {image['manifest_digest']}\n"
            f"    names {', '.join(image['names']) or '(none)'}\n"
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


def _get_recipe(name):
    recipe_set = getUtility(IOCIRecipeSet)
    recipe = recipe_set.getByName(OWNER_NAME, name)
    if recipe is None:
        recipe = recipe_set.new(name, OWNER_NAME, image_name=name)
    return recipe


def _get_processor(arch_tag=ARCH_TAG):
    try:
        return getUtility(IProcessorSet).getByName(arch_tag)
    except ProcessorNotFound:
        return getUtility(IProcessorSet).new(arch_tag, arch_tag)


# Debian's (and so Launchpad's) names for the OCI platforms they build
# for: (architecture, variant) -> architecture tag.  Others are named
# by their architecture and variant (``mips64le``, ``arm64v9``).
DEBIAN_ARCH_TAGS = {
    ("amd64", ""): "amd64",
    ("arm64", ""): "arm64",
    ("arm64", "v8"): "arm64",
    ("arm", ""): "armhf",
    ("arm", "v7"): "armhf",
    ("arm", "v6"): "armel",
    ("arm", "v5"): "armel",
    ("386", ""): "i386",
    ("ppc64le", ""): "ppc64el",
    ("s390x", ""): "s390x",
    ("riscv64", ""): "riscv64",
}


def arch_tag_for(platform):
    """The architecture tag of an OCI ``platform`` dict, or None.

    ``{"architecture": "arm", "variant": "v7"}`` is ``armhf``, as
    Launchpad names the builds of that architecture.
    """
    platform = platform or {}
    architecture = platform.get("architecture") or ""
    variant = platform.get("variant") or ""
    if not architecture:
        return None
    tag = DEBIAN_ARCH_TAGS.get((architecture, variant))
    if tag is None:
        tag = "".join(
            c for c in (architecture + variant).lower() if c.isalnum()
        )
    return tag or None


def _get_distro_arch_series(arch_tag=ARCH_TAG):
    """ubuntu/noble/ARCH, made on first use (as 0002-build-farm.sql does)."""
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
        return series.getDistroArchSeries(arch_tag)
    except NotFoundError:
        return series.newArch(arch_tag, _get_processor(arch_tag))


def set_build_platform(build, platforms):
    """Put ``build`` on the architecture of its first image.

    The build is created before the archive is read, on `ARCH_TAG`; once
    the images are known, its ``arch_tag`` (and title, and the processor
    superseding compares) become those of the first image's platform.

    :param platforms: the images' OCI platform dicts, in order.
    """
    for platform in platforms:
        arch_tag = arch_tag_for(platform)
        if arch_tag is not None:
            break
    else:
        return
    if arch_tag != build.arch_tag:
        das = _get_distro_arch_series(arch_tag)
        build.distro_arch_series = das
        build.processor = das.processor


def new_build(recipe):
    """A new build of ``recipe``, requested by its owner."""
    requester = getUtility(IPersonSet).getByName(recipe.owner_name)
    if requester is None:
        requester = getUtility(IPersonSet).new(recipe.owner_name)
    return getUtility(IOCIRecipeBuildSet).new(
        requester, recipe, _get_distro_arch_series()
    )


def get_builder(url):
    """The builder named `BUILDER_NAME`, now at ``url``."""
    builder = getUtility(IBuilderSet).getByName(BUILDER_NAME)
    if builder is None:
        builder = getUtility(IBuilderSet).new(
            _get_processor(), url, BUILDER_NAME, virtualized=False
        )
    builder.url = url
    return builder


def _new_build(recipe_name, own=None):
    build = new_build(_get_recipe(recipe_name))
    bq = build.queueBuild()
    if own is not None:
        # Owned before it is visible: see `lpoci.runlock`.
        own(f"build:{build.id}")
    transaction.commit()
    return build, bq


def _process_upload(upload_path, build, logger):
    """Process the upload at ``incoming/<leaf>`` as process-upload does."""
    fsroot = os.path.dirname(upload_path)
    UploadProcessor(os.path.dirname(fsroot), log=logger).processBuildUpload(
        fsroot, os.path.basename(upload_path)
    )
    if build.status != BuildStatus.FULLYBUILT:
        raise RunError(
            f"build {build.id} {build.status.name}: {build.failure_reason}"
        )


@defer.inlineCallbacks
def _run(
    reactor,
    archive,
    recipe_name,
    image_name,
    work_dir,
    logger,
    progress,
    own=None,
):
    build, bq = _new_build(recipe_name, own)
    checkpoint("run.build-created")
    logger.info(f"launchpad: created build {build.id}")
    cache_dir = os.path.join(work_dir, "cache")
    build_dir = os.path.join(work_dir, "build")
    os.makedirs(cache_dir)
    os.makedirs(build_dir)
    server = BuilderServer(cache_dir)
    url = server.listen(reactor)
    # Started now, so that the processes are ready once gathering ends
    # (starting one costs about 0.4 CPU seconds, which is then off the
    # critical path); no more of them than CPUs, since hashing is what
    # they spend their time on.
    workers = min(DOWNLOAD_CONNECTIONS, os.cpu_count() or 1)
    pool = make_download_process_pool(min=workers, max=workers)
    pool.start()
    counter = None
    try:
        builder = get_builder(url)
        bq.markAsBuilding(builder)
        transaction.commit()
        worker = BuilderWorker.makeBuilderWorker(
            url, None, WORKER_TIMEOUT, reactor=reactor, process_pool=pool
        )
        behaviour = OCIRecipeBuildBehaviour(
            build, upload_root=os.path.join(work_dir, "uploads")
        )
        behaviour.setBuilder(builder, worker)
        logger.info(f"builder: listening on {url}, gathering {archive}")
        # The builder starts building at once; gathering runs in a
        # thread, as on a builder.  Fetching starts once it is done.
        gather_phase = progress.phase("gather", os.path.getsize(archive))

        def fetch_phase():
            # The builder is WAITING a moment before `gathered` fires.
            if gather_phase.seconds is None:
                gather_phase.finish()
            if "fetch" not in progress.phases:
                progress.phase("fetch")
            return progress.phases["fetch"]

        def gather_done(result):
            if gather_phase.seconds is None and result is not None:
                gather_phase.finish(
                    result.bytes_in, f"{_mb(result.bytes_out)} out"
                )
            fetch_phase()
            return result

        counter = _FetchCounter(worker, fetch_phase, behaviour, reactor)

        server.builder.startBuild(build.build_cookie)
        gathered = deferToThread(
            build_on_builder,
            server.builder,
            build.build_cookie,
            archive,
            build_dir,
            image_name,
            lambda phase, done, total: gather_phase.update(done),
            # What the build farm asks the builder for.
            upload_format=behaviour.extraBuildArgs()["upload_format"],
        )
        gathered.addCallback(gather_done)
        try:
            upload_path = yield collect_build(
                behaviour,
                bq,
                logger.info,
                poll_interval=GATHER_POLL_INTERVAL,
                wake=gathered,
            )
        except (BuilderWorkerError, BuildDaemonError) as e:
            transaction.abort()
            build.failure_reason = str(e)
            build.updateStatus(
                BuildStatus.FAILEDTOBUILD, force_invalid_transition=True
            )
            transaction.commit()
            yield gathered
            raise RunError(f"build {build.id} FAILEDTOBUILD: {e}") from None
        gather_result = yield gathered
    except BaseException:
        if counter is not None:
            counter.stop()
        yield pool.stop()
        yield server.stopListening()
        raise
    counter.stop()
    fetch_phase().finish(
        note=f"{_mb(behaviour.bytes_reused)} of layers reused"
    )
    # The download processes and the builder stop while the upload is
    # processed: one reactor turn sends the processes their shutdown.
    stopping = defer.DeferredList(
        [pool.stop(), server.stopListening()], consumeErrors=True
    )
    yield deferLater(reactor, 0, lambda: None)
    try:
        if upload_path is None:
            raise RunError(
                f"build {build.id} {build.status.name}: "
                f"{build.failure_reason}"
            )
        # What the index says; a legacy upload's images say it only in
        # their configs, which the builder read.
        set_build_platform(
            build,
            [
                image.descriptor.platform
                for image in behaviour.images
                if getattr(image, "descriptor", None) is not None
            ]
            or [image.platform for image in gather_result.images],
        )
        transaction.commit()
        stored = sum(result.size for result in behaviour.downloads.values())
        processing = progress.phase("processing", stored)
        _process_upload(upload_path, build, logger)
        checkpoint("run.processed")
        processing.finish(stored, build.status.name)
    finally:
        yield stopping
    report = _report(gather_result, build, behaviour)
    report["phases"] = progress.asdict()
    return report, build


def run_reactor(function, *args):
    """Run ``function(reactor, *args)`` on the reactor in this thread.

    :return: What its Deferred fires with; its failure is raised.
    """
    from twisted.internet import reactor

    outcome = []

    def start():
        # Twisted has installed its signal handlers (SIGCHLD is needed
        # for child processes); SIGINT and SIGTERM are ours again.
        handle_signals()
        d = defer.maybeDeferred(function, reactor, *args)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    with reactor_interrupts(reactor):
        reactor.run()
    raise_if_interrupted()
    (result,) = outcome
    if isinstance(result, Failure):
        result.raiseException()
    return result


def archive_problem(path):
    """Why ``path`` cannot be read as an archive, or None."""
    if os.path.isdir(path):
        return f"archive {path} is a directory, not an archive file"
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        return f"no such archive: {path}"
    except OSError as e:
        return f"cannot read archive {path}: {e.strerror}"
    if not os.path.isfile(path):
        return f"archive {path} is not a regular file"
    return None


# Launchpad's name grammar (upstream `lp.app.validators.name.valid_name`).
_RECIPE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*", re.ASCII)
MAX_RECIPE_NAME_LENGTH = 64
_ARCHIVE_SUFFIXES = (
    ".gz",
    ".tgz",
    ".xz",
    ".zst",
    ".zstd",
    ".tar",
    ".oci",
    ".docker",
)


def recipe_name_from(text):
    """A recipe name made of ``text`` (an image or file name), or None.

    ``team/image`` is ``team-image``; what a name may not hold becomes
    ``-``.
    """
    name = re.sub(r"[^a-z0-9+.]+", "-", text.lower()).strip("-+.")
    name = name[:MAX_RECIPE_NAME_LENGTH].rstrip("-+.")
    return name if _RECIPE_NAME.fullmatch(name) else None


def default_recipe_name(args):
    """The recipe a run builds when ``--recipe`` is not given.

    One recipe per image: the repository pushed to (``--image``), else
    ``sample`` for ``--sample``, else the archive's file name without
    its suffixes (the image's own names are known only once the
    archive is read, after the build has been created).
    """
    if getattr(args, "image", None):
        name = recipe_name_from(args.image)
    elif args.sample:
        name = "sample"
    else:
        base = os.path.basename(args.archive)
        while base.lower().endswith(_ARCHIVE_SUFFIXES):
            base = base.rsplit(".", 1)[0]
        name = recipe_name_from(base)
    return name or DEFAULT_RECIPE_NAME


def option_problem(args):
    """Why the push and recipe options cannot be used, or None.

    Checked before anything is built: ``--image`` and ``--tag`` by the
    reference grammar (`lpbuildd.ociimage.reference`), ``--registry``
    as a push rule's URL and by its host, ``--recipe`` as a name.
    """
    recipe = getattr(args, "recipe", None)
    if recipe is not None and not (
        len(recipe) <= MAX_RECIPE_NAME_LENGTH
        and _RECIPE_NAME.fullmatch(recipe)
    ):
        return (
            f"--recipe {recipe[:100]!r} is not a valid name (lower-case "
            f"letters, digits, '+', '.' and '-', starting with a letter or "
            f"digit, at most {MAX_RECIPE_NAME_LENGTH} characters)"
        )
    registry = getattr(args, "registry", None)
    if registry is not None:
        # urlsplit drops tabs and line breaks; the URL is kept as given.
        if not registry.isascii() or not registry.isprintable():
            return (
                f"--registry {registry[:100]!r} holds control or non-ASCII "
                f"characters"
            )
        try:
            check_registry_url(registry)
        except OCIRegistryCredentialsURLError as e:
            return f"--registry {registry[:100]!r}: {e}"
        if not is_registry_host(urlsplit(registry).netloc):
            return (
                f"--registry {registry[:100]!r} does not name a registry "
                f"host (host or host:port)"
            )
    image = getattr(args, "image", None)
    if image is not None and not is_repository_path(image):
        return (
            f"--image {image[:100]!r} is not a valid repository name "
            f"(lower-case path components such as team/image, without "
            f"the registry's host or a tag)"
        )
    for tag in getattr(args, "tag", None) or ():
        if not is_tag(tag):
            return (
                f"--tag {tag[:100]!r} is not a valid tag (up to 128 "
                f"letters, digits, '_', '.' and '-', not starting with "
                f"'.' or '-')"
            )
    return None


def run_args_problem(args):
    """(exit status, one line) if ``lp-oci run`` cannot start, else None.

    Checked before the state is touched (`lpoci.cli` calls it before
    taking the state's lock) and so before anything is built.
    """
    if args.sample == bool(args.archive):
        return 2, "give either an archive or --sample"
    if args.archive:
        problem = archive_problem(args.archive)
        if problem:
            return 1, problem
    registry = getattr(args, "registry", None)
    if bool(registry) != bool(getattr(args, "image", None)):
        return 2, "--registry and --image go together"
    if not registry and (
        getattr(args, "tag", None) or getattr(args, "credentials", None)
    ):
        return 2, "--tag and --credentials need --registry"
    problem = option_problem(args)
    if problem:
        return 2, " ".join(problem.split())
    return None


def run_main(args, stdout, stderr):
    """The ``lp-oci run`` command; see the module docstring.

    ``args`` passed `run_args_problem` (`lpoci.cli` checks it before
    taking the state's lock).
    """
    # Progress on stderr (see `lpoci.progress`), the result alone on
    # stdout.
    quiet = getattr(args, "quiet", False) or args.json
    progress = RunProgress(stderr, mode="off" if quiet else None)
    logger = _run_logger(progress, getattr(args, "verbose", False))
    setup_services(args.state, schema="create")
    # The work directory (builder's build directory and file cache,
    # upload directories, temporary files) is <state>/work/<run id>/,
    # removed at the end and swept by the next run if this one dies.
    with RunLock(args.state, "run") as lock, lock.tempdir():
        for line in recover_stranded(args.state):
            # What an operator must know even without --verbose.
            progress.log(f"lp-oci: recovery: {line}")
        try:
            return _run_locked(args, stdout, stderr, lock, logger, progress)
        except BaseException as e:
            # Interrupted (SIGTERM, SIGINT) or an error on the way out:
            # what this run owns is failed now, not left for recovery.
            fail_owned(lock.owns, e)
            if isinstance(e, KeyboardInterrupt):
                write_finished_builds(lock.owns, stdout, args.json)
            raise


def _run_locked(args, stdout, stderr, lock, logger, progress):
    registry = getattr(args, "registry", None)
    recipe_name = getattr(args, "recipe", None) or default_recipe_name(args)
    try:
        _configure_push(args, recipe_name)
    except RegistryRunError as e:
        stderr.write(f"lp-oci: error: {' '.join(str(e).split())}\n")
        return 1
    work_dir = lock.path
    if args.sample:
        archive = write_sample_archive(os.path.join(work_dir, "sample.tar"))
        image_name = SAMPLE_IMAGE_NAME
    else:
        archive = os.path.abspath(args.archive)
        image_name = IMAGE_NAME
    try:
        report, build = run_reactor(
            _run,
            archive,
            recipe_name,
            image_name,
            work_dir,
            logger,
            progress,
            lock.own,
        )
    except (RunError, BuilderWorkerError, BuildDaemonError) as e:
        transaction.abort()
        stderr.write(f"lp-oci: error: {' '.join(str(e).split())}\n")
        return 1
    report["next_steps"] = next_steps(args, build)
    failure = None
    if registry and build.status == BuildStatus.FULLYBUILT:
        logger.info(f"registry: pushing to {registry} {args.image}")
        job = build.last_registry_upload_job
        if job is not None:
            lock.own(f"job:{job.job.id}")
        try:
            report["registry"] = run_pending_push(
                build, tags=args.tag, progress=progress
            )
        except RegistryRunError as e:
            failure = e
            if getattr(e, "report", None) is not None:
                report["registry"] = e.report
        report["phases"] = progress.asdict()
    if args.json:
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    else:
        _write_summary(report, build, stdout)
        if "registry" in report:
            write_push_summary(report["registry"], stdout)
        _write_next_steps(report["next_steps"], stdout)
    if failure is not None:
        stdout.flush()
        stderr.write(f"lp-oci: error: {' '.join(str(failure).split())}\n")
        return 1
    return 0 if build.status == BuildStatus.FULLYBUILT else 1


def next_steps(args, build):
    """The commands that show, export and fetch ``build``: exact, runnable.

    ``serve`` first: ``fetch`` reads the web service it starts.
    """
    from lp.services.config import config
    from lpoci.serve import default_root_url

    common = []
    if getattr(args, "config", None):
        common += ["--config", os.environ.get("LPCONFIG", args.config)]
    state = ["--state", os.path.abspath(args.state)]
    root_url = default_root_url(config.webservice)
    api = (
        f"{root_url.rstrip('/')}/api/devel/~{build.recipe.owner_name}"
        f"/+oci-recipe/{build.recipe.name}/+build/{build.id}"
    )
    archive = f"{build.recipe.name}-{build.id}.oci.tar"
    fetched = f"{build.recipe.name}-{build.id}-fetched.oci.tar"
    commands = [
        ["lp-oci", *common, "serve", *state],
        [
            "lp-oci",
            *common,
            "export",
            str(build.id),
            *state,
            "--format",
            "oci",
            "-o",
            archive,
        ],
        ["lp-oci", *common, "fetch", api, "-o", fetched],
    ]
    return [shlex.join(command) for command in commands]


def _write_next_steps(commands, stdout):
    stdout.write("next steps:\n")
    for command in commands:
        stdout.write(f"  {command}\n")


def _configure_push(args, recipe_name):
    """Give the recipe the push rule the options ask for, or none."""
    recipe = _get_recipe(recipe_name)
    if not getattr(args, "registry", None):
        for rule in recipe.push_rules:
            remove_push_rule(rule)
        transaction.commit()
        return
    ensure_secrets_key(args.state)
    credentials = (
        read_credentials_file(args.credentials) if args.credentials else None
    )
    configure_push_rule(recipe, args.registry, args.image, credentials)
