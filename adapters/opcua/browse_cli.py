"""`shopfloor browse opc.tcp://…`: print a server's variables as a table, or as a draft
`tags:` block for an OPC UA source (`--format yaml`, named by adapters.tag_draft's rule).

The collector's CLI owns the command; it calls `configure_parser` on its sub-parser and
`run(args)` for the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from adapters.errors import AdapterError
from adapters.opcua.browse import Browsed, BrowseEntry, browse
from adapters.opcua.connection import save_server_certificate
from adapters.tag_draft import Found, add_draft_arguments, draft_tags, render_tags
from config.sources.opcua import OpcUaSecurity, SecurityMode, SecurityPolicy

PASSWORD_ENV = "SHOPFLOOR_OPCUA_PASSWORD"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = "List an OPC UA server's variables: node id, browse path, data type."
    parser.add_argument("endpoint", help="opc.tcp://host:port/path")
    parser.add_argument("--username")
    parser.add_argument("--password", help=f"default: ${PASSWORD_ENV}")
    parser.add_argument(
        "--security-policy", default="None", choices=[p.value for p in SecurityPolicy]
    )
    parser.add_argument(
        "--security-mode",
        choices=[m.value for m in SecurityMode],
        help="default: SignAndEncrypt with a policy, else None",
    )
    parser.add_argument("--certificate", type=Path, help="client certificate (else generated)")
    parser.add_argument("--private-key", type=Path)
    parser.add_argument(
        "--server-certificate",
        type=Path,
        help="the server certificate to trust (required with a policy)",
    )
    parser.add_argument(
        "--save-server-certificate",
        type=Path,
        metavar="FILE",
        help="fetch the certificate the server presents, write it (DER) and "
        "exit: inspect it, then name it as security.server_certificate",
    )
    parser.add_argument(
        "--root",
        metavar="NODE",
        help="list only below this node: a node id (ns=2;s=Line1) or a browse path "
        "(/0:Objects/2:Line1); default: the Objects folder",
    )
    add_draft_arguments(parser, "opcua", "the browse paths")
    parser.add_argument(
        "--max-depth", type=int, default=10, help="levels below the root (default 10)"
    )
    parser.add_argument(
        "--include-server",
        action="store_true",
        help="also list the standard Server object's variables",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    policy = SecurityPolicy(args.security_policy)
    if args.save_server_certificate is not None:
        try:
            path = asyncio.run(
                save_server_certificate(
                    args.endpoint, policy, args.save_server_certificate, args.timeout
                )
            )
        except (AdapterError, OSError, TimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote the server certificate to {path}", file=out)
        return 0
    default_mode = (
        SecurityMode.NONE if policy is SecurityPolicy.NONE else (SecurityMode.SIGN_AND_ENCRYPT)
    )
    try:
        security = OpcUaSecurity(
            policy=policy,
            mode=SecurityMode(args.security_mode) if args.security_mode else default_mode,
            certificate=args.certificate,
            private_key=args.private_key,
            server_certificate=args.server_certificate,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
    try:
        found = asyncio.run(
            browse(
                args.endpoint,
                username=args.username,
                password=password,
                security=security,
                root=args.root,
                max_depth=args.max_depth,
                include_server=args.include_server,
                timeout_s=args.timeout,
            )
        )
    except (AdapterError, OSError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "yaml":
        print_yaml(found, args.endpoint, args.machine, out)
    else:
        print_table(found, out)
    return 0


def print_table(entries: Sequence[BrowseEntry], out: TextIO) -> None:
    header = BrowseEntry("NODE ID", "BROWSE PATH", "TYPE")
    rows = [header, *entries]
    w0 = max(len(r.node_id) for r in rows)
    w1 = max(len(r.browse_path) for r in rows)
    for r in rows:
        print(f"{r.node_id:<{w0}}  {r.browse_path:<{w1}}  {r.data_type}", file=out)
    print(f"{len(entries)} variable(s)", file=out)


def print_yaml(found: Browsed, endpoint: str, machine: str | None, out: TextIO) -> None:
    """The draft tag map: node ids (the browse path and data type as comments)."""
    items = [
        Found(e.below_root, (("node", e.node_id),), f"{e.data_type}  {e.browse_path}")
        for e in found
    ]
    tags = draft_tags(items, machine=machine, root_name=found.root_name)
    header = [
        f"shopfloor browse {endpoint}: {len(tags)} variable(s) below {found.root_path}",
        "Paste under an opcua source. machine: the first object below the root (or the root",
        "itself); TODO where none was found. name: from the browse path. Review both.",
    ]
    out.write(render_tags(tags, header, quoted_key="node"))
