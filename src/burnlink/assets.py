"""The files the web pages are built from, as this package ships them.

Where each static file is, its Subresource Integrity hash, and which of our modules each
script imports. The web pages reference them with these hashes; ``burnlink verify-site``
holds a running server against the same files, without importing the web app.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import fastapi_offline

__all__ = [
    "STATIC_DIR",
    "SWAGGER_UI_DIR",
    "SWAGGER_UI_FILES",
    "SWAGGER_UI_PREFIX",
    "Assets",
    "asset_file",
    "module_imports",
    "package_assets",
    "sri",
]

STATIC_DIR = Path(__file__).parent / "web" / "static"
# Swagger UI 5 (OpenAPI 3.1), as shipped by the pinned ``fastapi-offline`` package; only
# these two of its files are served, under ``static/swagger/``.
SWAGGER_UI_DIR = Path(fastapi_offline.__file__).parent / "static"
SWAGGER_UI_PREFIX = "swagger/"
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
# Static `import … from "./x.js"`, `export … from "./x.js"` and `import "./x.js"` of our own
# modules. Dynamic import() is not used (a test keeps it so): it would escape the preloads.
_IMPORT_RE = re.compile(r"""(?:\bfrom|\bimport)\s*["'](\.{1,2}/[^"'\s]+)["']""")


def sri(data: bytes) -> str:
    """The Subresource Integrity value of ``data``: ``sha384-`` and the base64 digest."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def module_imports(source: str, path: str) -> tuple[str, ...]:
    """The static relative imports of the module at ``path`` (relative to ``static/``)."""
    found: list[str] = []
    for specifier in _IMPORT_RE.findall(source):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), specifier))
        if target not in found:
            found.append(target)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Assets:
    """The package's static files: integrity of each, and the imports of each module."""

    integrity: Mapping[str, str]
    imports: Mapping[str, tuple[str, ...]]

    @classmethod
    def scan(cls, root: Path = STATIC_DIR) -> Assets:
        """Hash every file under ``root``; read the imports of every ``.js`` file.

        With the default ``root``, the served Swagger UI files are included too, named
        ``swagger/…`` as they are served (their imports are not read: they are not modules).
        """
        integrity: dict[str, str] = {}
        imports: dict[str, tuple[str, ...]] = {}
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            name = file.relative_to(root).as_posix()
            data = file.read_bytes()
            integrity[name] = sri(data)
            if name.endswith(".js"):
                imports[name] = module_imports(data.decode("utf-8"), name)
        if root == STATIC_DIR:
            for name in SWAGGER_UI_FILES:
                integrity[SWAGGER_UI_PREFIX + name] = sri((SWAGGER_UI_DIR / name).read_bytes())
        return cls(integrity, imports)

    def dependencies(self, entry: str) -> list[str]:
        """Every module ``entry`` imports, directly or not, each once, dependencies first."""
        ordered: list[str] = []

        def visit(module: str, trail: tuple[str, ...]) -> None:
            for dependency in self.imports.get(module, ()):
                if dependency in trail or dependency in ordered:
                    continue
                if dependency not in self.integrity:
                    raise LookupError(f"{module} imports {dependency}, which is not a file")
                visit(dependency, (*trail, dependency))
                ordered.append(dependency)

        visit(entry, (entry,))
        return ordered


def asset_file(name: str) -> Path:
    """The file of the package whose static asset is served as ``static/{name}``."""
    if (
        name.startswith(SWAGGER_UI_PREFIX)
        and name.removeprefix(SWAGGER_UI_PREFIX) in SWAGGER_UI_FILES
    ):
        return SWAGGER_UI_DIR / name.removeprefix(SWAGGER_UI_PREFIX)
    return STATIC_DIR / name


def package_assets() -> Assets:
    """The integrity and imports of this package's own static files (for ``verify-site``)."""
    return Assets.scan(STATIC_DIR)
