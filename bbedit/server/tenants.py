"""Namespaces on one proxy: which memory a request is about, and who may change which.

One database holds a memory per bot or tenant (a namespace). The proxy picks a request's namespace

- by the client's API key (``api_keys``: key -> namespace), when any are configured: a request with
  another key is refused, and a namespace header that names another namespace than the key's is
  refused too (a client cannot reach another tenant's edits by claiming its name);
- else by a header a trusted gateway sets (``header``, e.g. ``X-BBEdit-Namespace``), among the
  configured namespaces;
- else the default namespace.

Admin tokens are per namespace (``admin_tokens``: name -> token): a token acts on its own namespace
only, and its name is recorded in the history as who made each change.

The settings come from a JSON or YAML file (``bbedit serve --namespaces FILE``)::

    header: X-BBEdit-Namespace
    namespaces:
      support-bot:
        api_keys: [sk-support-1]
        admin_tokens: {alice: "env:ALICE_TOKEN"}
      sales-bot:
        admin_tokens: {bob: "s3cret"}

A secret written ``env:NAME`` is read from that environment variable.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError
from bbedit.memory.store import check_namespace


def _secret(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: a key or token must be a non-empty string")
    if value.startswith("env:"):
        got = os.environ.get(value[4:])
        if not got:
            raise ConfigError(f"{where}: environment variable {value[4:]} is not set")
        return got
    return value


@dataclass
class NamespaceAccess:
    """Who reaches which namespace (see the module docstring). ``default`` is the namespace of
    requests that name none."""

    default: str = "default"
    header: str | None = None
    api_keys: dict[str, str] = field(default_factory=dict)  # client API key -> namespace
    admin_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (name, namespace)
    declared: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_namespace(self.default)
        for ns in (*self.api_keys.values(), *(ns for _, ns in self.admin_tokens.values()), *self.declared):
            check_namespace(ns)
        if self.header is not None and not self.header.strip():
            raise ConfigError("the namespace header name must not be empty")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], default: str = "default") -> NamespaceAccess:
        """Read the settings file. Raises :class:`ConfigError` naming what is wrong."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read the namespaces file {p}: {e}") from e
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except ValueError as e:  # json and yaml errors are both ValueErrors
            raise ConfigError(f"{p} is not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {e}") from e
        return cls.from_dict(data, default=default, where=str(p))

    @classmethod
    def from_dict(cls, data: Any, default: str = "default", where: str = "namespaces") -> NamespaceAccess:
        if not isinstance(data, Mapping) or not isinstance(data.get("namespaces", {}), Mapping):
            raise ConfigError(f"{where}: expected a mapping with a 'namespaces' mapping")
        unknown = set(data) - {"header", "namespaces", "default"}
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        keys: dict[str, str] = {}
        tokens: dict[str, tuple[str, str]] = {}
        for ns, spec in data.get("namespaces", {}).items():
            check_namespace(ns)
            spec = spec or {}
            if not isinstance(spec, Mapping) or set(spec) - {"api_keys", "admin_tokens"}:
                raise ConfigError(f"{where}: namespace {ns!r} takes only api_keys (a list) and admin_tokens "
                                  f"(name: token)")
            for key in spec.get("api_keys", []) or []:
                key = _secret(key, f"{where}: {ns}.api_keys")
                if key in keys and keys[key] != ns:
                    raise ConfigError(f"{where}: one API key is given to two namespaces ({keys[key]}, {ns})")
                keys[key] = ns
            for name, token in (spec.get("admin_tokens", {}) or {}).items():
                token = _secret(token, f"{where}: {ns}.admin_tokens.{name}")
                if token in tokens:
                    raise ConfigError(f"{where}: one admin token is given twice ({tokens[token][0]}, {name})")
                tokens[token] = (str(name), ns)
        return cls(default=str(data.get("default", default)), header=data.get("header"), api_keys=keys,
                   admin_tokens=tokens, declared=tuple(data.get("namespaces", {})))

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces this proxy serves (the default first)."""
        return tuple(dict.fromkeys((self.default, *self.declared)))

    def claimed(self, headers: Mapping[str, str]) -> str | None:
        return headers.get(self.header.lower()) if self.header else None


class AccessDenied(Exception):
    """A request may not use the namespace it asked for; ``status`` 401 or 403, ``code`` for clients."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _lookup(secrets: Mapping[str, Any], given: str) -> Any:
    """``secrets[given]`` compared in constant time over every configured secret."""
    found = None
    for secret, value in secrets.items():
        if hmac.compare_digest(secret.encode(), given.encode()):
            found = value
    return found


def chat_namespace(access: NamespaceAccess, headers: Mapping[str, str]) -> str:
    """The namespace of a model request (chat, responses, completions). Raises :class:`AccessDenied`."""
    claimed = access.claimed(headers)
    if access.api_keys:
        key = bearer(headers)
        ns = _lookup(access.api_keys, key) if key else None
        if ns is None:
            raise AccessDenied(401, "this API key is not given a namespace on this proxy", "unknown_api_key")
        if claimed is not None and claimed != ns:
            raise AccessDenied(403, f"this API key belongs to another namespace than {claimed!r}", "wrong_namespace")
        return str(ns)
    if claimed is not None:
        if claimed not in access.namespaces:
            raise AccessDenied(403, f"no namespace {claimed!r} on this proxy", "unknown_namespace")
        return claimed
    return access.default


def admin_identity(access: NamespaceAccess, global_token: str | None, headers: Mapping[str, str],
                   asked: str | None) -> tuple[str, str]:
    """(who, namespace) of an admin request: its token's name and namespace. ``asked`` is a namespace
    the request names (header or ``?namespace=``); naming another than the token's is refused.
    Without any token configured (a loopback-only proxy) anyone is "admin" of the namespace asked."""
    asked = asked or access.claimed(headers)
    if global_token is None and not access.admin_tokens:
        ns = asked or access.default
        if ns not in access.namespaces:
            raise AccessDenied(403, f"no namespace {ns!r} on this proxy", "unknown_namespace")
        return "admin", ns
    given = bearer(headers)
    if not headers.get("authorization"):
        raise AccessDenied(401, "the admin API needs 'Authorization: Bearer <token>'", "missing_token")
    tokens = dict(access.admin_tokens)
    if global_token is not None:
        tokens.setdefault(global_token, ("admin", access.default))
    found = _lookup(tokens, given) if given else None
    if found is None:
        raise AccessDenied(401, "invalid admin token", "invalid_token")
    name, ns = found
    if asked is not None and asked != ns:
        raise AccessDenied(403, f"this token may not act on namespace {asked!r}", "wrong_namespace")
    return name, ns


class Namespaces:
    """The open memories of a proxy, one per namespace, each with its router; opened on first use by
    ``open_router(namespace)`` and closed together."""

    def __init__(self, open_router: Callable[[str], Any], first: tuple[str, Any] | None = None) -> None:
        self._open = open_router
        self._routers: dict[str, Any] = dict([first]) if first else {}
        self._lock = threading.Lock()

    def router(self, namespace: str) -> Any:
        r = self._routers.get(namespace)
        if r is None:
            with self._lock:
                r = self._routers.get(namespace)
                if r is None:
                    r = self._routers[namespace] = self._open(namespace)
        return r

    def items(self) -> list[tuple[str, Any]]:
        return list(self._routers.items())
