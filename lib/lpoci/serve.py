# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci serve``: the web service and website under gunicorn.

Settings come from the options, else the configuration's
``[webservice]`` section (`lp.services.config`).

Each gunicorn worker builds the application itself
(`lp.services.webapp.wsgi.make_app`): database connections and the
Storm stores are per process.  ``--embedded`` serves from this one
process with wsgiref instead, for ``make run``-style use.
"""

__all__ = [
    "default_root_url",
    "gunicorn_settings",
    "hash_password_main",
    "serve_main",
]

import os


def default_root_url(settings, host=None, port=None):
    """The root URL ``lp-oci serve`` serves without ``--root-url``.

    :param settings: the configuration's ``[webservice]`` section;
        ``host`` and ``port`` override its own.
    """
    host = host or settings.host
    port = port or settings.port
    return settings.root_url or f"http://{host}:{port}/"


def gunicorn_settings(settings):
    """gunicorn's settings beside ``bind`` and ``workers``.

    Threaded workers (``gthread``): a thread waits for a request's bytes
    while the others serve, so a handful of clients that send a header
    line a second cannot stop other requests from being answered (with
    the ``sync`` class, one such client holds a whole worker); a
    connection that sends nothing is handed back to the worker's poller
    after 5 s and closed after ``keepalive``.  Request lines and headers
    are bounded (gunicorn answers 400 beyond them), and so are bodies
    (`lp.services.webapp.guards`).

    :param settings: the configuration's ``[webservice]`` section.
    """
    return {
        "worker_class": "lp.services.webapp.gunicornworker.ThreadWorker",
        "threads": settings.threads,
        "keepalive": settings.keepalive,
        "timeout": settings.timeout,
        "graceful_timeout": settings.timeout,
        "limit_request_line": 8190,
        "limit_request_fields": 50,
        "limit_request_field_size": 8190,
    }


def serve_main(args, stdout, stderr):
    from lp.services.config import config
    from lp.services.webapp.wsgi import load_accounts, make_app

    if not os.path.isdir(args.state):
        # A mistyped --state must not serve (and create) an empty one.
        stderr.write(
            f"lp-oci: error: no state directory {args.state} (lp-oci run "
            "makes one; give it with --state)\n"
        )
        return 1
    settings = config.webservice
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    root_url = args.root_url or default_root_url(settings, host, port)
    accounts = args.accounts or settings.accounts_file
    if accounts:
        # Each worker reads the file again; a bad one is refused here,
        # before any worker starts.
        try:
            load_accounts(accounts)
        except ValueError as e:
            stderr.write(f"lp-oci: error: {e}\n")
            return 1

    # The database is checked, and pending migrations applied, once
    # here before any worker starts: a state without one is one line,
    # not workers failing to boot, and workers never migrate at once.
    from lp.services.database.connection import disconnect
    from lp.services.scripts import setup_services

    try:
        setup_services(args.state)
    finally:
        disconnect()

    def factory():
        return make_app(
            state_dir=args.state,
            root_url=root_url,
            accounts_file=accounts,
        )

    if args.embedded:
        from wsgiref.simple_server import make_server

        server = make_server(host, port, factory())
        _announce(stderr, root_url)
        stderr.flush()
        server.serve_forever()
        return 0

    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            for name, value in gunicorn_settings(settings).items():
                self.cfg.set(name, value)
            self.cfg.set("accesslog", None)
            self.cfg.set("proc_name", "lp-oci-serve")

        def load(self):
            return factory()

    _announce(stderr, root_url)
    Server().run()
    return 0


def _announce(stderr, root_url):
    stderr.write(
        f"lp-oci: serving the pages at {root_url} and the web service at "
        f"{root_url}api/devel/\n"
    )
    stderr.flush()


def _read_password(stdin, stderr):
    if stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ", stream=stderr)
        if getpass.getpass("Again: ", stream=stderr) != password:
            raise ValueError("the passwords differ")
    else:
        password = stdin.readline().rstrip("\r\n")
    if not password:
        raise ValueError("empty password")
    return password


def hash_password_main(args, stdout, stderr, stdin=None):
    """Print the hashed form of a password for an accounts file."""
    import json
    import sys

    from lp.services.webapp.wsgi import hash_password

    try:
        password = _read_password(stdin or sys.stdin, stderr)
    except ValueError as e:
        stderr.write(f"lp-oci: error: {e}\n")
        return 1
    hashed = hash_password(password)
    if args.json:
        stdout.write(json.dumps({"password_hash": hashed}) + "\n")
    else:
        stdout.write(hashed + "\n")
    return 0
