#!/bin/bash
# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).
#
# Install the Debian/Ubuntu packages the project and its tests need, but only
# those that are missing, so that this is quick (and silent) when everything
# is present.  Used by "make install" and by .ci/run.
#
#   postgresql       initdb/pg_ctl for the database test layers
#   skopeo           conformance tests: copies images to/from OCI layouts
#   docker-registry  registry upload tests: the CNCF distribution server
#   python3-venv     only if "$PYTHON -m venv" cannot work without it
#   make             .ci/run drives everything through make
#   chromium         headless browser tests of the build pages
#   python3-apt      \
#   intltool          | launchpad-buildd's own test suite ("make
#   brz               | upstream-check", see README "Upstream patch series"),
#   apt-utils        /  run with Debian's /usr/bin/python3
#
# As root the packages are installed with apt-get; otherwise the missing ones
# are listed and the script carries on (tests that need them should skip).

set -euo pipefail

PYTHON="${PYTHON:-python3}"
missing=()

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null \
        | grep -q '^install ok installed$'
}

command -v make >/dev/null 2>&1 || missing+=(make)
# The "postgresql" package's server binaries are not on PATH on Debian.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
        && ! is_installed postgresql; then
    missing+=(postgresql)
fi
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
is_installed python3-apt || missing+=(python3-apt)
command -v intltool-update >/dev/null 2>&1 || missing+=(intltool)
command -v brz >/dev/null 2>&1 || missing+=(brz)
command -v apt-ftparchive >/dev/null 2>&1 || missing+=(apt-utils)
# The upstream suite's virtualenv is made with Debian's python3.
if [ -x /usr/bin/python3 ] \
        && ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-system-deps: run as root (or:" \
        "sudo apt-get install ${missing[*]}); carrying on without them." >&2
    exit 0
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null
