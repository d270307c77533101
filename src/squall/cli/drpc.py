"""``squall drpc`` (the DRPC server), ``squall drpc-client``, and DRPC for ``squall run``.

``squall drpc`` serves Storm's DRPC HTTP interface until Ctrl-C or SIGTERM,
then fails every pending request with 503 and exits (130 / 143).

``squall drpc-client FUNCTION [ARGS ...]`` calls FUNCTION once per ARG (once
with empty args when there is none) and prints one result per line; exit 0 when
every call succeeded, 1 when one failed (the error is printed), 2 on bad usage.

The token for servers that want one (``drpc.auth.token``) comes from the
``SQUALL_DRPC_TOKEN`` environment variable, so that it does not show in ``ps``.

:func:`local_endpoint` is how ``squall run`` serves a topology that has DRPC
spouts: it starts a :class:`~squall.drpc.DRPCServer` (on ``drpc.http.host``
and ``drpc.http.port``, 127.0.0.1:3774 by default) and points the topology at
it through ``drpc.servers``, unless ``drpc.servers`` is already set.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

from squall.api.topology import TopologyDef
from squall.cli.options import add_config_option, positive_float
from squall.config import ConfigError
from squall.drpc import DRPCClient, DRPCError, DRPCServer, DRPCSpout
from squall.drpc import conf as K

TOKEN_ENV = "SQUALL_DRPC_TOKEN"

_SERVER_EPILOG = """\
exit status: 130 / 143 after Ctrl-C / SIGTERM (pending requests get 503);
1 when the server cannot start (for example, the port is taken).

examples:
  squall drpc
  squall drpc --host 0.0.0.0 --port 3774 -c drpc.request.timeout.secs=60
  SQUALL_DRPC_TOKEN=secret squall drpc
"""

_CLIENT_EPILOG = """\
exit status: 0 every call succeeded; 1 a call failed (400 failed request,
504 timeout, 503 unavailable, 401 unauthorized, or no server reachable);
2 bad usage.

examples:
  squall drpc-client exclamation hello world
  squall drpc-client -f reach foo.com/blog/1
  squall drpc-client --server h1:3774 --server h2:3774 reach foo.com/blog/1
"""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), _port(port)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``drpc`` and ``drpc-client`` to the ``squall`` parser."""
    p = commands.add_parser(
        "drpc",
        help="run a DRPC server (Storm's HTTP interface, port 3774)",
        description=(
            "Run a DRPC server: clients call GET /drpc/<function>/<args> or\n"
            "POST /drpc/<function>; topologies with a DRPC spout fetch the requests."
        ),
        epilog=_SERVER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("-p", "--port", type=_port, help="HTTP port (default 3774; 0 picks a free one)")
    add_config_option(
        p,
        "a drpc.* setting, e.g. drpc.request.timeout.secs=60 (repeatable)",
        example="drpc.request.timeout.secs=60",
    )
    p.set_defaults(func=drpc_command)

    c = commands.add_parser(
        "drpc-client",
        help="call a DRPC function and print the result",
        description="Call FUNCTION once per ARG and print each result on its own line.",
        epilog=_CLIENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("-f", "--function", help="the function (then every positional is an ARG)")
    c.add_argument("words", nargs="*", metavar="FUNCTION ARGS", help="the function, then args")
    c.add_argument("--host", default=K.DEFAULT_HOST, help="server host (default 127.0.0.1)")
    c.add_argument("-p", "--port", type=_port, default=K.DEFAULT_PORT, help="port (default 3774)")
    c.add_argument(
        "-s",
        "--server",
        dest="servers",
        action="append",
        type=_server,
        default=[],
        metavar="HOST:PORT",
        help="a server to call; repeat for several (calls fail over between them)",
    )
    c.add_argument("--timeout", type=positive_float, default=630.0, help="seconds to wait per call")
    c.add_argument(
        "--retries", type=int, default=3, help="retries after a connection failure or a 503"
    )
    c.set_defaults(func=drpc_client_command)


def drpc_command(args: argparse.Namespace) -> int:
    """Run the DRPC server until a signal; return the exit status."""
    conf: dict[str, Any] = dict(args.conf)
    token = os.environ.get(TOKEN_ENV)
    # As in `squall run`: an explicit -c drpc.auth.token wins over the environment.
    if token and not conf.get(K.DRPC_AUTH_TOKEN):
        conf[K.DRPC_AUTH_TOKEN] = token
    try:
        server = _start_server(conf, host=args.host, port=args.port)
    except ConfigError as e:
        sys.stderr.write(f"squall drpc: {e}\n")
        return 1
    stop = threading.Event()
    got: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handle)
    auth = ", token required" if conf.get(K.DRPC_AUTH_TOKEN) else ""
    sys.stdout.write(f"DRPC server listening on {server.url}{auth} (Ctrl-C to stop)\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        pending = server.service.pending()
        server.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.stdout.write(f"DRPC server stopped ({pending} pending request(s) failed with 503)\n")
    sys.stdout.flush()
    return 128 + got[0] if got else 0


def _start_server(
    conf: Mapping[str, Any], host: str | None = None, port: int | None = None
) -> DRPCServer:
    """A started :class:`~squall.drpc.DRPCServer`.

    Raises:
        ConfigError: it cannot listen (the port is taken...) or a drpc.* setting
            is bad; the message says which.
    """
    try:
        return DRPCServer(conf, host=host, port=port).start()
    except (OSError, ValueError) as e:
        raise ConfigError(getattr(e, "strerror", None) or str(e)) from e


def drpc_client_command(args: argparse.Namespace) -> int:
    """Call the function for each arg; print results; return the exit status."""
    words: list[str] = list(args.words)
    if args.function is not None:
        function = args.function
    elif words:
        function = words.pop(0)
    else:
        sys.stderr.write("squall drpc-client: give a FUNCTION (and ARGS); see --help\n")
        return 2
    calls = words or [""]
    client = DRPCClient(
        args.host,
        args.port,
        servers=args.servers or None,
        token=os.environ.get(TOKEN_ENV) or None,
        timeout_secs=args.timeout,
        retries=max(0, args.retries),
    )
    status = 0
    with client:
        for arg in calls:
            try:
                result = client.execute(function, arg)
            except DRPCError as e:
                sys.stderr.write(
                    f"squall drpc-client: {function}({arg!r}) failed: {e.error} "
                    f"(HTTP {e.status}): {e.message}\n"
                )
                status = 1
                continue
            except ValueError as e:
                sys.stderr.write(f"squall drpc-client: {e}\n")
                return 2
            sys.stdout.write(result + "\n")
            sys.stdout.flush()
    return status


def drpc_functions(definition: TopologyDef) -> list[str]:
    """The DRPC functions a topology serves through ``drpc.servers`` (not a LocalDRPC)."""
    out: list[str] = []
    for comp in definition.spouts():
        if issubclass(comp.cls, DRPCSpout) and comp.kwargs.get("drpc") is None:
            fn = comp.kwargs.get("function")
            if isinstance(fn, str) and fn not in out:
                out.append(fn)
    return out


@contextlib.contextmanager
def local_endpoint(
    definition: TopologyDef, conf: Mapping[str, Any], say: Callable[..., None]
) -> Iterator[dict[str, Any]]:
    """For ``squall run``: serve the topology's DRPC functions over HTTP while it runs.

    Yields the config to add to the topology's (``drpc.servers``), or ``{}`` when
    the topology has no DRPC spout or ``drpc.servers`` is already set.

    Raises:
        ConfigError: the DRPC server cannot listen on its address.
    """
    functions = drpc_functions(definition)
    if not functions:
        yield {}
        return
    if conf.get(K.DRPC_SERVERS):
        say(f"DRPC: serving {', '.join(functions)} via drpc.servers {conf[K.DRPC_SERVERS]}")
        yield {}
        return
    server_conf = dict(conf)
    token = os.environ.get(TOKEN_ENV)
    if token and not server_conf.get(K.DRPC_AUTH_TOKEN):
        server_conf[K.DRPC_AUTH_TOKEN] = token
    server = _start_server(server_conf)
    try:
        host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
        auth = " -H 'Authorization: Bearer <token>'" if server_conf.get(K.DRPC_AUTH_TOKEN) else ""
        example = f"curl{auth} {server.url}/drpc/{functions[0]}/hello"
        say(
            f"DRPC server on {server.url} serving {', '.join(functions)} (try: {example})",
            True,
        )
        extra: dict[str, Any] = {K.DRPC_SERVERS: [f"{host}:{server.port}"]}
        if token and not conf.get(K.DRPC_AUTH_TOKEN):
            extra[K.DRPC_AUTH_TOKEN] = token
        yield extra
    finally:
        server.close()
