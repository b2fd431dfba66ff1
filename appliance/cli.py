"""Command line: run, check-config, sim, modems, ussd, passwd, status, send."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import urllib.parse

from appliance import hangup

if hangup.is_run(sys.argv):   # before the slow imports: see hangup.py
    hangup.hold()

from appliance import __version__  # noqa: E402
from appliance import config as cfg  # noqa: E402
from appliance.errors import ConfigError, StoreError  # noqa: E402

log = logging.getLogger("appliance")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sms-appliance", description="SMS gateway appliance")
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the appliance daemon")
    run.add_argument("--config", help=f"the config file (default {cfg.DEFAULT_CONFIG_PATH}; "
                     "with --demo: none, or this file plus the simulated modems)")
    run.add_argument("--demo", action="store_true", help="simulated modems, no hardware")
    run.add_argument("--http-host")
    run.add_argument("--http-port", type=int)
    run.add_argument("--state-dir")
    run.add_argument("--admin-password", default=os.environ.get("SMS_APPLIANCE_ADMIN_PASSWORD", ""))
    run.add_argument("--modems", type=int, choices=range(0, 17), metavar="0..16",
                     help="demo: number of simulated modems (0: none)")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    sim = sub.add_parser("sim", help="serve simulated modems on ptys")
    sim.add_argument("--modems", type=int, default=1, choices=range(1, 17), metavar="1..16")
    sim.set_defaults(func=cmd_sim)

    modems = sub.add_parser("modems", help="list the modems this board can see")
    modems.set_defaults(func=cmd_modems)

    ussd = sub.add_parser("ussd", help="run a USSD code on a modem (through the daemon)")
    ussd.add_argument("slot")
    ussd.add_argument("code")
    _client_args(ussd)
    ussd.set_defaults(func=cmd_ussd)

    status = sub.add_parser("status", help="print the running daemon's /status")
    _client_args(status)
    status.set_defaults(func=cmd_status)

    send = sub.add_parser("send", help="send an SMS through the running daemon")
    send.add_argument("recipient")
    send.add_argument("text")
    _client_args(send)
    send.set_defaults(func=cmd_send)

    passwd = sub.add_parser("passwd", help="set a user's password (default admin)")
    passwd.add_argument("--user", default="admin")
    passwd.add_argument("--state-dir", default=str(cfg.DEFAULT_STATE_DIR))
    passwd.add_argument("--password", help="the new password (default: read from stdin)")
    passwd.add_argument("--create", action="store_true",
                        help="create the state directory if it holds no appliance state yet")
    passwd.add_argument("--hash-only", action="store_true",
                        help="print the password's hash for a config file's password_hash;"
                             " change nothing")
    passwd.set_defaults(func=cmd_passwd)
    return p


def _client_args(p: argparse.ArgumentParser) -> None:
    # without a trailing slash: "http://box:9501/" asked for "//status" (404)
    p.add_argument("--url", type=lambda url: url.rstrip("/"),
                   default=os.environ.get("SMS_APPLIANCE_URL", "http://127.0.0.1:9501"))
    p.add_argument("--username", default="admin")
    p.add_argument("--password", default=os.environ.get("SMS_APPLIANCE_PASSWORD", ""))
    # HTTPS: the board's certificate names the board, and a self-signed one verifies
    # against nothing; without these the CLI could not reach a board deployed with TLS
    p.add_argument("--cacert", metavar="FILE", default=os.environ.get("SMS_APPLIANCE_CACERT"),
                   help="https: trust this certificate (the board's own tls_cert), whatever "
                        "name it is reached by")
    p.add_argument("-k", "--insecure", action="store_true",
                   help="https: do not verify the certificate (as curl -k)")


def _setup_logging(verbose: bool) -> None:
    # systemd's journal adds the time; a terminal user wants it.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format=stamp + "%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# --- run ----------------------------------------------------------------------------------


def run_config(args) -> cfg.Config:
    """The config for `run`: the file or the demo defaults, with the flags on top.

    `--demo --config FILE` applies FILE and adds the simulated modems, so a configuration
    can be tried without hardware (in a temporary state directory unless --state-dir)."""
    from appliance import config_check
    if args.demo and not args.config:
        config = cfg.Config(demo=cfg.DemoConfig(enabled=True))
    else:
        config = config_check.load(args.config or cfg.DEFAULT_CONFIG_PATH)
        if args.demo:
            config = dataclasses.replace(
                config, demo=dataclasses.replace(config.demo, enabled=True))
    http = config.http
    if args.demo and not args.config and not args.http_host:
        http = dataclasses.replace(http, host="127.0.0.1")
    if args.http_host:
        http = dataclasses.replace(http, host=args.http_host)
    if args.http_port is not None:
        http = dataclasses.replace(http, port=args.http_port)
    store = config.store
    if args.state_dir:
        store = dataclasses.replace(store, state_dir=args.state_dir)
    elif args.demo:
        store = dataclasses.replace(store, state_dir=tempfile.mkdtemp(prefix="sms-appliance-"))
    demo = config.demo
    if args.modems is not None:       # 0 is a choice: the demo without modems
        demo = dataclasses.replace(demo, modems=args.modems)
    return dataclasses.replace(config, http=http, store=store, demo=demo)


def cmd_run(args) -> int:
    from appliance import daemon
    hangup.hold()                    # main(["run", ...]) called in-process
    config = run_config(args)
    pin_factory = None
    network = None
    if config.demo.enabled:
        from appliance import demo
        config, network, pin_factory = demo.start(config, record=False)
    try:
        code = daemon.run(config, admin_password=args.admin_password, pin_factory=pin_factory,
                          on_started=lambda d: _started(d, network, args.admin_password),
                          restart_check=lambda: _config_problem(args, config))
    except (OSError, StoreError) as exc:   # a port taken, a state dir we may not write
        log.error("daemon: cannot run: %s", exc)
        print(f"cannot run: {exc}", file=sys.stderr)
        return 1
    finally:
        if network is not None:
            network.close()
    if code == daemon.RESTART:
        _restart_in_place(args, config)
    return code


def _config_problem(args, running: cfg.Config) -> str:
    """What `run` would refuse in the configuration now ("" when nothing), the HTTP ports
    it would listen on included: a port another program holds stopped the new daemon after
    the old one had gone, and nothing served."""
    import copy
    args = copy.copy(args)
    if args.demo and not args.state_dir:     # not a new temporary directory per check
        args.state_dir = running.store.state_dir
    try:
        new = run_config(args)
    except ConfigError as exc:
        return str(exc)
    return _ports_taken(new.http, running.http)


def _ports_taken(new: cfg.HttpConfig, running: cfg.HttpConfig) -> str:
    from appliance.web.listen import listen_socket
    ours = {(running.host, p) for p in [running.port, *running.extra_ports, running.tls_port]}
    for port in [new.port, *new.extra_ports, new.tls_port]:
        if not port or (new.host, port) in ours:
            continue
        try:
            listen_socket(new.host, port).close()
        except OSError as exc:
            return str(exc)
    return ""


def _restart_in_place(args, config: cfg.Config) -> None:
    """SIGHUP: the same command again in this process (systemd keeps its main PID and waits
    for READY=1). A demo's temporary state directory is kept, and with it the queue."""
    argv = [sys.executable, *sys.orig_argv[1:]]
    if args.demo and not args.state_dir:
        argv += ["--state-dir", config.store.state_dir]
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # A second SIGHUP before the new process installs its handler would kill it (the default
    # action), and systemd takes that for a clean exit; blocked, it waits for the new one.
    hangup.block_for_exec()
    os.execv(sys.executable, argv)


def _started(daemon, network, given_password: str = "") -> None:
    if network is not None:
        daemon.control.sim = network
    http = daemon.config.http
    secure = bool(http.tls_cert) and not http.tls_port   # tls_port: HTTPS beside this port
    scheme = "https" if secure else "http"
    url = f"{scheme}://{'127.0.0.1' if http.host in ('0.0.0.0', '::') else http.host}:{daemon.port}"
    password = daemon.generated_password
    lines = [f"sms-appliance {__version__} is running: {url}/status"]
    state = daemon.config.store.state_dir
    lines.append(_password_line(daemon.config, state, password, given_password))
    shown = password or "PASSWORD"     # a given one is not echoed to a log
    lines.append("send a message:")
    lines.append(f"  curl{' -k' if secure else ''} '{url}/api?action=sendmessage&username=admin&password={shown}"
                 "&recipient=%2B36201234567&messagetype=SMS:TEXT&messagedata=Hello+world'")
    lines.append("then follow it with action=getmessagebyid&msgID=<the messageid>")
    print("\n".join(lines), flush=True)
    log.info("daemon: ready at %s", url)


def _password_line(config, state: str, generated: str | None, given: str) -> str:
    """Where the admin password comes from (accounts._provision_admin's order). A first
    start with --admin-password was told its password was "the one set before"."""
    if generated:
        return f"admin password (shown once): {generated}"
    if given:
        return "admin password: the one given with --admin-password"
    change = f"another: sms-appliance passwd --state-dir {state}"
    if config.admin.password or config.admin.password_hash:
        return f"admin password: the one in the config file's [admin] section; {change}"
    # a kept state directory: `make run` again, a restart
    return f"admin password: the one set before in {state} (shown at its first start); {change}"


# --- other commands --------------------------------------------------------------------


def cmd_check_config(args) -> int:
    from appliance import config_check
    config, problems = config_check.check_file(args.file)
    if problems:
        for problem in problems:
            print(problem.render(args.file), file=sys.stderr)
        print(f"{args.file}: {len(problems)} problem{'s' if len(problems) > 1 else ''}",
              file=sys.stderr)
        return 1
    names = ", ".join(f"{c.name} ({c.type})" for c in config.connections) or "none"
    users = ", ".join(u.name for u in config.users) or "none"
    print(f"{args.file}: OK\n  connections (from the file): {names}\n  users (from the file): "
          f"{users}\n  routes: {len(config.routes)}\n  demo: {config.demo.enabled}")
    for warning in config_check.warnings(config, args.file):
        print(f"warning: {warning.render(args.file)}")
    return 0


def cmd_sim(args) -> int:
    from appliance.sim.standalone import main as sim_main
    return sim_main(args.modems)


def cmd_modems(args) -> int:
    from appliance.modem.discover import format_modems, list_modems
    print(format_modems(list_modems()))
    return 0


def cmd_passwd(args) -> int:
    from appliance.accounts import Accounts
    from appliance.store.documents import Documents
    from appliance.store.journal import Journal
    from appliance.state_dir import holds_state
    password = _new_password(args)
    if password is None:
        return 1
    if args.hash_only:
        from appliance import auth
        print(auth.hash_password(password))
        return 0
    if not args.create and not holds_state(args.state_dir):
        print(f"{args.state_dir} holds no appliance state (a mistyped --state-dir?); "
              "use --create to start a new one", file=sys.stderr)
        return 1
    _become_state_owner(args.state_dir)
    try:
        journal = Journal.open(args.state_dir)
    except (OSError, StoreError) as exc:    # a file where a directory goes, /proc, ...
        print(f"cannot open the state directory {args.state_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        accounts = Accounts(Documents(args.state_dir), journal)
        if args.user == "admin":
            accounts.provision(cfg.Config(), password)
        elif not accounts.set_password(args.user, password):
            print(f"no user named {args.user}", file=sys.stderr)
            return 1
    finally:
        journal.close()
    print(f"password of {args.user} changed")
    return 0


def _new_password(args) -> str | None:
    """--password or a line of stdin; None (said why) when it is too short."""
    password = args.password or sys.stdin.readline().strip()
    if len(password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return None
    return password


def _become_state_owner(state_dir: str) -> None:
    """Run as the user who owns the state (the service's), when started as root (`sudo
    sms-appliance passwd`): files written as root (documents.json, the journal's WAL) locked
    the daemon out of its own state at the next write or start."""
    import os
    try:
        owner = os.stat(state_dir)
    except OSError:
        return                  # --create: a new directory is made by whoever runs this
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    os.setgid(owner.st_gid)
    os.setgroups([owner.st_gid])
    os.setuid(owner.st_uid)


def _tls(args):
    """The TLS context `--cacert`/`--insecure` ask for, or None (the system's CAs)."""
    if not (args.cacert or args.insecure):
        return None
    import ssl
    context = ssl.create_default_context(cafile=args.cacert or None)
    context.check_hostname = False        # the board's name is not 127.0.0.1
    if args.insecure:
        context.verify_mode = ssl.CERT_NONE
    return context


def _get(url: str, timeout: float = 30, tls=None) -> tuple[int, str]:
    """(HTTP status, body). An error status is the daemon's answer (its body says why: a
    wrong password, an unknown slot, a bad code), not a daemon out of reach."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=tls) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode("utf-8", "replace")
    except TimeoutError:        # it answered the connection, not yet the request
        print(f"the daemon at {url.split('?')[0]} did not answer within {timeout:g}s",
              file=sys.stderr)
        return 0, ""
    except (OSError, ValueError) as exc:     # ValueError: a URL that is not one ("http://[::1")
        print(f"cannot reach the daemon at {url.split('?')[0]}: {exc}", file=sys.stderr)
        return 0, ""


def cmd_status(args) -> int:
    status, body = _get(f"{args.url}/status", tls=_tls(args))
    if status != 200:
        if status:
            print(f"the daemon answered {status}: {body.strip()[:300]}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:          # something else answers at that URL
        print(f"{args.url} answered, but not with the appliance's /status (is it another "
              f"server?): {body.strip()[:100]!r}", file=sys.stderr)
        return 1
    return 0


def cmd_send(args) -> int:
    query = urllib.parse.urlencode({"action": "sendmessage", "username": args.username,
                                    "password": args.password, "recipient": args.recipient,
                                    "messagedata": args.text})
    status, body = _get(f"{args.url}/api?{query}", tls=_tls(args))
    print(body)
    return 0 if status == 200 and "<statuscode>0</statuscode>" in body else 1


def cmd_ussd(args) -> int:
    query = urllib.parse.urlencode({"slot": args.slot, "code": args.code,
                                    "username": args.username, "password": args.password})
    # longer than the daemon's own wait (a USSD session may take two minutes), so its
    # answer, not our timeout, says what happened
    status, body = _get(f"{args.url}/admin/ussd?{query}", timeout=150, tls=_tls(args))
    if status == 200:
        print(body.strip())
        return 0
    if status:
        print(f"USSD {args.code} on {args.slot} failed ({status}): {body.strip()}", file=sys.stderr)
    return 1
