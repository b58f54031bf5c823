# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci list`` and ``lp-oci show``: what a state directory holds.

    lp-oci list [--state DIR] [--json]
    lp-oci show BUILD_ID [--state DIR] [--json]

``list`` prints one line per build, newest first (id, status, recipe,
architecture, registry upload status, creation time); ``--json`` prints
``{"builds": [{"build_id", "recipe", "owner", "arch_tag", "status",
"registry_upload_status", "date_created", "web_link"}]}``.

``show`` prints what the build page shows: status, dates, why it
failed, its logs, images, files, archives and where it was pushed;
``--json`` prints it as one document (the keys of the text, in
snake_case, with ``images``, ``files`` and ``registry`` as lists).
Neither writes to the state.
"""

__all__ = [
    "add_show_parsers",
]

import json
import os


def _set_root_url():
    """The URLs printed are those ``lp-oci serve`` serves."""
    from lp.services.config import config
    from lpoci.serve import default_root_url

    if not os.environ.get("LP_ROOT_URL"):
        os.environ["LP_ROOT_URL"] = default_root_url(config.webservice)


def add_show_parsers(commands):
    """Add ``list`` and ``show`` to ``lp-oci``'s subparsers."""
    listing = commands.add_parser(
        "list", help="list the builds of a state directory, newest first"
    )
    listing.add_argument("--state", default="var", help="state directory")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_main)
    show = commands.add_parser(
        "show", help="show a build: status, failure, files, pushes"
    )
    show.add_argument("build_id", type=int, metavar="BUILD_ID")
    show.add_argument("--state", default="var", help="state directory")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=show_main)


def _date(value):
    return None if value is None else value.isoformat()


def _summary(build):
    from lp.services.webapp.publisher import canonical_url

    return {
        "build_id": build.id,
        "recipe": build.recipe.name,
        "owner": build.recipe.owner_name,
        "arch_tag": build.arch_tag,
        "status": build.status.name,
        "registry_upload_status": build.registry_upload_status.name,
        "date_created": _date(build.date_created),
        "web_link": canonical_url(build),
    }


def list_main(args, stdout, stderr):
    from zope.component import getUtility

    from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuildSet
    from lpoci.export import open_state

    open_state(args.state)
    _set_root_url()
    # As an administrator sees them: this is the state's owner.
    builds = [
        _summary(build)
        for build in getUtility(IOCIRecipeBuildSet).findVisible(_Admin())
    ]
    if args.json:
        json.dump({"builds": builds}, stdout, indent=2)
        stdout.write("\n")
        return 0
    if not builds:
        stdout.write(f"no builds in {args.state}\n")
    for build in builds:
        stdout.write(
            f"{build['build_id']:>5} {build['status']:<15} "
            f"~{build['owner']}/{build['recipe']} {build['arch_tag']} "
            f"registry:{build['registry_upload_status']} "
            f"{build['date_created']}\n"
        )
    return 0


class _Admin:
    name = None
    admin = True


def build_details(build):
    """The ``show --json`` document of ``build``."""
    from lp.oci.browser.website import registry_results

    details = _summary(build)
    details.update(
        {
            "title": build.title,
            "date_started": _date(build.date_started),
            "date_finished": _date(build.date_finished),
            "duration": (
                None
                if build.duration is None
                else build.duration.total_seconds()
            ),
            "failure_reason": build.failure_reason,
            "build_log_url": build.log_url,
            "upload_log_url": build.upload_log_url,
            "upload_format": build.upload_format,
            "registry_upload_error_summary": (
                build.registry_upload_error_summary
            ),
            "registry": registry_results(build),
            "images": build.images,
            "files": [
                {
                    "name": lfa.filename,
                    "kind": oci_file.kind.name.lower(),
                    "size": content.filesize,
                    "sha256": content.sha256,
                }
                for oci_file, lfa, content in build.getFiles()
            ],
            "archives": {
                name: {
                    "url": getattr(build, f"{name}_archive_url"),
                    "size": getattr(build, f"{name}_archive_size"),
                    "sha256": getattr(build, f"{name}_archive_sha256"),
                }
                for name in ("oci", "docker")
            },
        }
    )
    return details


def show_main(args, stdout, stderr):
    from lpoci.export import find_build

    build = find_build(args)
    _set_root_url()
    details = build_details(build)
    if args.json:
        json.dump(details, stdout, indent=2)
        stdout.write("\n")
        return 0
    for key in (
        "title",
        "status",
        "failure_reason",
        "arch_tag",
        "date_created",
        "date_started",
        "date_finished",
        "duration",
        "build_log_url",
        "upload_log_url",
        "upload_format",
        "registry_upload_status",
        "registry_upload_error_summary",
        "web_link",
    ):
        if details[key] is not None:
            stdout.write(f"{key.replace('_', ' ')}: {details[key]}\n")
    for result in details["registry"]:
        stdout.write(
            f"registry: {result['registry']}, repository "
            f"{result['repository']}, tags {', '.join(result['tags'])}, "
            f"index {result['index_digest']}\n"
        )
        if result["pull"]:
            stdout.write(f"  pull: {result['pull']}\n")
    for image in details["images"]:
        stdout.write(
            f"image {image['platform']}: manifest {image['manifest_digest']} "
            f"config {image['config_digest']} "
            f"{', '.join(image['names'])}\n"
        )
    for item in details["files"]:
        stdout.write(f"file {item['kind']}: {item['name']} {item['size']}\n")
    for name, archive in details["archives"].items():
        if archive["url"]:
            stdout.write(
                f"archive {name}: {archive['url']} {archive['size']} bytes"
                + (
                    f", sha256 {archive['sha256']}"
                    if archive["sha256"]
                    else ""
                )
                + "\n"
            )
    return 0
