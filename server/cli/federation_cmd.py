"""``frazil federation``: a Pelican director and origin on 127.0.0.1 (docs/operators.md).

For trying ``osdf://`` configs on one machine: point the server's
``osdf_federation`` at the printed ``pelican://`` URL and its
``pelican_ca_file`` at the printed CA file.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from common.cli_errors import CliError


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0-65535: {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=_port, required=True, help="the director's port (0: any free port)")
    parser.add_argument("--root", required=True, help="storage directory: objects live at ROOT/<namespace path>")
    parser.add_argument("--issuer", help="token issuer URL; without one the namespaces are public "
                                         "(anonymous reads and writes)")
    parser.add_argument("--issuer-ca", dest="issuer_ca", help="CA file to trust for the issuer's HTTPS endpoints")
    parser.add_argument("--namespace", action="append", dest="namespaces",
                        help="namespace prefix served (repeatable; default /)")
    parser.add_argument("--origin-port", dest="origin_port", type=_port, default=0,
                        help="the origin's port (default: any free port)")
    parser.add_argument("--tls-dir", dest="tls_dir", help="where the CA and server certificate are kept "
                                                          "(default ROOT/.frazil-federation-tls)")


async def _serve(args: argparse.Namespace) -> None:
    from server.federation.namespaces import BadPath
    from server.federation.service import Federation

    if args.issuer and not args.issuer.startswith(("http://", "https://")):
        raise CliError(f"--issuer must be an http(s):// URL, not {args.issuer!r}")
    federation = Federation(Path(args.root), port=args.port, origin_port=args.origin_port,
                            namespaces=args.namespaces or ["/"], issuer=args.issuer,
                            issuer_ca_file=args.issuer_ca, tls_dir=Path(args.tls_dir) if args.tls_dir else None)
    try:
        await federation.start()
    except BadPath as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot start the federation: {exc.strerror or exc}") from None
    print(f"federation {federation.url}\ndirector {federation.director_url}\norigin {federation.origin_url}\n"
          f"ca-file {federation.ca_file}\nroot {federation.root}\n"
          f"namespaces {' '.join(sorted(set(federation.namespaces)))}\n"
          f"tokens {'required, issuer ' + args.issuer if args.issuer else 'not required (public)'}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await federation.stop()


def run(args: argparse.Namespace) -> int:
    asyncio.run(_serve(args))
    print("federation stopped", file=sys.stderr)
    return 0
