"""Loading flowscope's parts at startup, loudly.

Components (`flowscope/services/*` defining `attach(app)`), tool modules (`flowscope/mcp/tools/*`)
and plugins (the `plugins` setting: importable module names, each may define tools with `@tool`
and a component with `attach(app)`) are imported here. A part that fails stops the server with
the reason (`StartupError`), except one that cannot run in this environment: a built-in part
missing a third-party package, or an `attach` raising `ComponentUnavailable`. Those are left out
and listed, with the reason, in `/health` and `get_interfaces`.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A part of flowscope failed to load or attach; the message says which and why."""


class ComponentUnavailable(Exception):
    """Raised by `attach(app)` when the component cannot run here (e.g. no SNMP); say why."""


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _missing_package(exc: BaseException) -> str | None:
    """The third-party package a failed import lacks, None when the failure is flowscope's own."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] != "flowscope":
        return exc.name.split(".")[0]
    return None


def import_part(name: str, what: str, unavailable: dict[str, str], *, builtin: bool = True) -> ModuleType | None:
    """Import one module; None when it cannot run here (recorded in `unavailable`)."""
    try:
        return importlib.import_module(name)
    except Exception as exc:
        package = _missing_package(exc) if builtin else None
        if package is None:
            raise StartupError(f"{what} {name} failed to load ({_why(exc)})") from exc
        unavailable[name] = f"needs the Python package {package}, which is not installed"
        log.warning("%s %s is unavailable: %s", what, name, unavailable[name])
        return None


def package_modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [m.name for m in pkgutil.iter_modules(pkg.__path__, package + ".")]


def attach_components(app: Any, modules: list[tuple[str, bool]]) -> None:
    """Attach every component among `modules` ((name, builtin) pairs) into `app.components`."""
    for name, builtin in modules:
        module = import_part(name, "component" if builtin else "plugin", app.unavailable, builtin=builtin)
        attach = getattr(module, "attach", None)
        if attach is None:
            continue
        short = getattr(module, "COMPONENT", name.rsplit(".", 1)[-1])
        try:
            comp = attach(app)
        except ComponentUnavailable as exc:
            app.unavailable[name] = str(exc)
            log.warning("component %s is unavailable: %s", short, exc)
            continue
        except Exception as exc:
            raise StartupError(f"component {short} ({name}) failed to attach ({_why(exc)})") from exc
        if comp is not None:
            app.components[short] = comp


def startup_modules(plugins: list[str]) -> list[tuple[str, bool]]:
    """Built-in components, then plugins, as (module name, builtin) pairs."""
    return [(m, True) for m in package_modules("flowscope.services")] + [(p, False) for p in plugins]


def load_tools(unavailable: dict[str, str]) -> None:
    """Import every built-in tool module (plugins were imported with the components)."""
    for name in package_modules("flowscope.mcp.tools"):
        import_part(name, "tool module", unavailable)


def unavailable_list(unavailable: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "reason": why} for name, why in sorted(unavailable.items())]
