"""``bbedit console``: the operator's console for a memory, without a proxy (``bbedit serve`` serves the
same console at ``/console`` of its own port)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from bbedit.cli.common import default_memory_dir, mem_opt


def cmd_console(args: argparse.Namespace) -> int:
    """Serve the console until interrupted. Raises :class:`ConfigError` for bad settings and what opening
    the memory raises."""
    from bbedit.memory.memory import NAMESPACE_ENV
    from bbedit.server.config import TOKEN_ENV
    from bbedit.server.console.context import ConsoleSettings
    from bbedit.server.console.standalone import serve_console

    namespace = args.namespace or os.environ.get(NAMESPACE_ENV) or "default"
    access = None
    if args.namespaces:
        from bbedit.server.tenants import NamespaceAccess

        access = NamespaceAccess.from_file(args.namespaces, default=namespace)
    settings = ConsoleSettings(session_idle_s=args.session_minutes * 60, max_upload_bytes=args.max_upload_bytes,
                               secure_cookies="always" if args.secure_cookies else "auto")
    serve_console(args.memory or default_memory_dir(), host=args.host, port=args.port,
                  log_level="debug" if args.verbose >= 2 else "info",
                  token=args.token or os.environ.get(TOKEN_ENV) or None, access=access, namespace=namespace,
                  editor=args.editor, upstream=args.upstream, model=args.model, api_key=args.api_key,
                  answers=not args.no_model, gate_threshold=args.gate_threshold, settings=settings)
    return 0


def register(sub: Any) -> None:
    """Add the console command."""
    sp = sub.add_parser("console", help="the operator's console for a memory, in a browser (no proxy)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8001)
    sp.add_argument("--token", default=None, help="admin token to log in with (default: $BBEDIT_SERVER_TOKEN); "
                                                  "required unless --host is loopback")
    sp.add_argument("--namespaces", default=None, metavar="FILE",
                    help="JSON/YAML file of namespaces with their admin tokens (as for bbedit serve)")
    sp.add_argument("--upstream", default=None, help="OpenAI-compatible base URL that Try it asks (default: the "
                                                     "embedded SmolLM2, started at the first question)")
    sp.add_argument("--model", default=None, help="model name at the upstream (default: the first it lists)")
    sp.add_argument("--api-key", default=None, help="API key for the upstream (default: $OPENAI_API_KEY)")
    sp.add_argument("--no-model", action="store_true", help="Try it shows the routing decision only")
    sp.add_argument("--editor", default="ike", choices=["ike", "postedit", "replace"], help="the editor Try it applies")
    sp.add_argument("--gate-threshold", type=float, default=None, help="override the scope gate threshold")
    sp.add_argument("--session-minutes", type=float, default=60, help="log out after this long without a request")
    sp.add_argument("--max-upload-bytes", type=int, default=4 * 1024 * 1024, help="largest import file")
    sp.add_argument("--secure-cookies", action="store_true",
                    help="mark the session cookie Secure even over plain http (behind a TLS proxy)")
    mem_opt(sp)
    sp.set_defaults(func=cmd_console)
