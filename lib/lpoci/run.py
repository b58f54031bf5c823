# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci run``: a whole OCI build cycle on loopback.

Everything runs on one Twisted reactor, in the main thread:

1. Launchpad side: `setup_services` on the state directory (SQLite and a
   local librarian, kept between runs), an `OCIRecipe` (reused by name),
   a new `OCIRecipeBuild`, queued and marked as building on a `Builder`
   named ``lp-oci``.
2. Builder side: a real builder (`lpbuildd.builder.Builder` and its HTTP
   site) listening on 127.0.0.1 on the same reactor; its
   `OCIBuildManager` replays the archive as ``docker save`` output and
   gathers it into the file cache in a thread, as a builder does.
3. Build farm side: `BuilderWorker.status()` is polled and handed to
   `OCIRecipeBuildBehaviour.handleStatus`, which stores the log and
   collects the files of the upload, fetching only the layers the
   librarian lacks (downloads run in an ampoule process pool); then the
   builder is cleaned.
4. Upload processing: `UploadProcessor.processBuildUpload` runs
   `OCIRecipeUpload.process` on ``incoming/<leaf>`` in its transaction;
   the build is FULLYBUILT.
5. With ``--registry URL --image NAME``: the recipe's one push rule, so
   processing scheduled an `OCIRegistryUploadJob`, which runs once the
   reactor has stopped (`lpoci.registry`); ``--json`` gains
   ``"registry"``.

The report (``--json``: one JSON document) lists every image and layer
and whether each layer was ``fetched`` or ``reused``.
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
    "run_main",
    "run_reactor",
]

import json
import logging
import os

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
from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
from lp.registry.interfaces.distribution import IDistributionSet
from lp.registry.interfaces.distroseries import NoSuchDistroSeries
from lp.registry.interfaces.person import IPersonSet
from lp.services.scripts import setup_services
from lpbuildd.oci import OCIBuildManager, OCIGatherError
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


def _run_logger(progress, verbose):
    """The run's logger; the build farm's also goes to it.

    Silent unless ``verbose``; then INFO and above (retries, warnings,
    each file grabbed) go to stderr through ``progress``.
    """
    logger = _quiet_logger()
    farm = logging.getLogger(BUILDD_MANAGER_LOG_NAME)
    farm.propagate = False
    for name in (logger, farm):
        for handler in list(name.handlers):
            if isinstance(handler, ProgressLogHandler):
                name.removeHandler(handler)
    if verbose:
        handler = ProgressLogHandler(progress)
        for name in (logger, farm):
            name.addHandler(handler)
            name.setLevel(logging.INFO)
    elif not farm.handlers:
        farm.addHandler(logging.NullHandler())
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
    `FETCH_PROGRESS_INTERVAL` seconds.
    """

    def __init__(self, worker, get_phase, upload_root, reactor):
        self._get_phase = get_phase
        self._upload_root = upload_root
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
            phase.update(self.completed + bytes_in_flight(self._upload_root))

    def stop(self):
        if self._loop.running:
            self._loop.stop()


def _platform(descriptor):
    """``os/architecture[/variant]`` of an index entry's platform."""
    platform = descriptor.platform or {}
    parts = [
        platform[key]
        for key in ("os", "architecture", "variant")
        if platform.get(key)
    ]
    return "/".join(parts) or None


def _report(gather_result, build, behaviour):
    # The layers' diff_ids, which upload processing read from the
    # configs.
    diff_ids = {str(layer.digest): layer.diff_id for layer in build.layers}
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


def _get_recipe(name):
    recipe_set = getUtility(IOCIRecipeSet)
    recipe = recipe_set.getByName(OWNER_NAME, name)
    if recipe is None:
        recipe = recipe_set.new(name, OWNER_NAME, image_name=name)
    return recipe


def _get_processor():
    try:
        return getUtility(IProcessorSet).getByName(ARCH_TAG)
    except ProcessorNotFound:
        return getUtility(IProcessorSet).new(ARCH_TAG, ARCH_TAG)


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
        return series.newArch(ARCH_TAG, _get_processor())


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

        counter = _FetchCounter(
            worker, fetch_phase, behaviour.upload_root, reactor
        )

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
        stored = sum(result.size for result in behaviour.downloads.values())
        upload_phase = progress.phase("upload", stored)
        _process_upload(upload_path, build, logger)
        checkpoint("run.processed")
        upload_phase.finish(stored, build.status.name)
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


def run_main(args, stdout, stderr):
    """The ``lp-oci run`` command; see the module docstring."""
    if args.sample == bool(args.archive):
        stderr.write("lp-oci: error: give either an archive or --sample\n")
        return 2
    if args.archive:
        problem = archive_problem(args.archive)
        if problem:
            stderr.write(f"lp-oci: error: {problem}\n")
            return 1
    registry = getattr(args, "registry", None)
    if bool(registry) != bool(getattr(args, "image", None)):
        stderr.write("lp-oci: error: --registry and --image go together\n")
        return 2
    if not registry and (
        getattr(args, "tag", None) or getattr(args, "credentials", None)
    ):
        stderr.write(
            "lp-oci: error: --tag and --credentials need --registry\n"
        )
        return 2
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
    recipe_name = "sample" if args.sample else "run"
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
    if registry and build.status == BuildStatus.FULLYBUILT:
        logger.info(f"registry: pushing to {registry} {args.image}")
        job = build.last_registry_upload_job
        if job is not None:
            lock.own(f"job:{job.job.id}")
        try:
            report["registry"] = run_pending_push(build, tags=args.tag)
        except RegistryRunError as e:
            stderr.write(f"lp-oci: error: {' '.join(str(e).split())}\n")
            return 1
    if args.json:
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    else:
        _write_summary(report, build, stdout)
        if "registry" in report:
            write_push_summary(report["registry"], stdout)
    return 0 if build.status == BuildStatus.FULLYBUILT else 1


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
