"""The hub and the users' servers in a learning platform's frame: another site, over HTTPS.

Two things stop a framed hub. The Content-Security-Policy ``frame-ancestors`` of JupyterHub and of
jupyterhub-singleuser is ``'none'``; here it lists the platforms' origins instead
(https://www.w3.org/TR/CSP3/#directive-frame-ancestors). And browsers withhold cookies from a site in
another site's frame unless they are ``SameSite=None; Secure``, and those that block third-party
cookies keep them only when they are also ``Partitioned`` (CHIPS: one cookie jar per top-level site).

- The hub: ``frame_hub`` amends ``JupyterHub.tornado_settings`` (``headers``, ``cookie_options``,
  ``xsrf_cookie_kwargs``) and adds the ``PartitionedCookies`` transform; LtiAuthenticator.get_handlers
  calls it, which JupyterHub does after building those settings and before building its tornado
  Application from them.
- The users' servers: JupyterHub hands them the hub's ``cookie_options`` itself (as
  ``JUPYTERHUB_COOKIE_OPTIONS``); ``user_server_args`` adds the ``frame-ancestors`` header and the
  ``_xsrf`` cookie's attributes to their command line, and enables this module as a jupyter-server
  extension, which adds ``PartitionedCookies`` there too.

The standard library's cookies learn ``Partitioned`` only in Python 3.14, and tornado writes its
``Set-Cookie`` headers after the output transforms have run: ``PartitionedCookies`` therefore hands
tornado response headers that add the attribute to every ``Set-Cookie`` written into them.

Imports only tornado, the standard library and lti_core: users' servers load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tornado.httputil import HTTPHeaders
from tornado.web import GZipContentEncoding, OutputTransform

from lti_core.cookies import partitioned_cookie
from lti_core.frames import frame_ancestors

#: The module users' servers load as a jupyter-server extension (``jpserver_extensions``).
EXTENSION = "jupyter_lti.frames"
#: What a cookie needs to reach a site framed by another site (only over HTTPS: ``Secure``).
FRAMED_COOKIE_OPTIONS: dict[str, Any] = {"samesite": "None", "secure": True}
CSP = "Content-Security-Policy"
SERVER_SETTINGS_ARG = "--ServerApp.tornado_settings"
SERVER_EXTENSIONS_ARG = "--ServerApp.jpserver_extensions"

# -- cookies ---------------------------------------------------------------------------------------


class _PartitioningHeaders(HTTPHeaders):
    """Response headers whose ``Set-Cookie`` values go through ``partitioned_cookie``."""

    def add(self, name: str, value: str, *, _chars_are_bytes: bool = True) -> None:
        if name.lower() == "set-cookie":
            value = partitioned_cookie(value)
        super().add(name, value, _chars_are_bytes=_chars_are_bytes)

    def __setitem__(self, name: str, value: str) -> None:
        if name.lower() == "set-cookie":
            value = partitioned_cookie(value)
        super().__setitem__(name, value)


class PartitionedCookies(OutputTransform):
    """Adds ``Partitioned`` to the response's ``SameSite=None; Secure`` cookies (``partitioned_cookie``).

    tornado adds the cookies of ``set_cookie`` to the headers this returns, after the transforms ran.
    """

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        return status_code, _PartitioningHeaders(headers), chunk


# -- the hub ---------------------------------------------------------------------------------------


def frame_hub(settings: dict[str, Any], sources: Sequence[str], *, cookies: bool, report_uri: str) -> list[str]:
    """Amend JupyterHub's tornado settings, before its Application is built from them.

    ``sources``: the ``frame-ancestors`` of the hub's pages (none: JupyterHub's header stays).
    ``cookies``: the hub's cookies become ``SameSite=None; Secure; Partitioned``. What the hub's admin
    set in ``JupyterHub.tornado_settings`` wins; returns what to tell the admin about it.
    """
    notes: list[str] = []
    headers = dict(settings.get("headers") or {})
    if sources:
        if any(name.lower() == CSP.lower() for name in headers):
            wanted = frame_ancestors(sources)
            notes.append(
                "JupyterHub.tornado_settings['headers'] sets a Content-Security-Policy: it is kept, so the "
                f"hub's pages can be framed only as it says (frame_ancestors would make it {wanted!r})"
            )
        else:
            # As JupyterHub's own header, with the platforms instead of 'none'.
            headers[CSP] = f"{frame_ancestors(sources)}; report-uri {report_uri}"
            settings["headers"] = headers
    if cookies:
        # JupyterHub hands cookie_options to the users' servers too (JUPYTERHUB_COOKIE_OPTIONS).
        settings["cookie_options"] = {**FRAMED_COOKIE_OPTIONS, **(settings.get("cookie_options") or {})}
        # Built from cookie_options (or set by the admin) before get_handlers; the path stays the hub's.
        settings["xsrf_cookie_kwargs"] = {**FRAMED_COOKIE_OPTIONS, **(settings.get("xsrf_cookie_kwargs") or {})}
        for name in ("cookie_options", "xsrf_cookie_kwargs"):
            if str(settings[name].get("samesite", "")).lower() != "none" or not settings[name].get("secure"):
                notes.append(f"JupyterHub.tornado_settings[{name!r}] overrides SameSite=None; Secure: kept")
        # JupyterHub builds its Application as web.Application(handlers, **tornado_settings): this
        # reaches the Application's ``transforms`` argument, which replaces tornado's default list.
        transforms = settings.get("transforms")
        if transforms is None:
            compress = settings.get("compress_response") or settings.get("gzip")
            transforms = [GZipContentEncoding] if compress else []
        if PartitionedCookies not in transforms:
            settings["transforms"] = [*transforms, PartitionedCookies]
    return notes


# -- users' servers ----------------------------------------------------------------------------------


def user_server_args(
    args: Sequence[str],
    sources: Sequence[str],
    *,
    cookies: bool,
    base_url: str = "",
    added_before: Sequence[str] = (),
) -> tuple[list[str], list[str], list[str]]:
    """``Spawner.args`` that make a user's server framable as the hub is: (args, what was added, notes).

    Adds ``--ServerApp.tornado_settings`` with the ``frame-ancestors`` header (jupyterhub-singleuser's
    own default is ``'none'``) and, with ``cookies``, ``SameSite=None; Secure`` for the server's
    ``_xsrf`` cookie, and enables this module as an extension (``Partitioned``); the server's other
    cookies get their attributes from the hub's ``cookie_options``. Ours come first, ``args`` are kept
    but for ``added_before`` (what an earlier start added: the spawner keeps its args). The notes say
    what could not be added, for the admin.
    """
    server_settings: dict[str, Any] = {}
    if sources:
        server_settings["headers"] = {CSP: frame_ancestors(sources)}
    if cookies:
        server_settings["xsrf_cookie_kwargs"] = {**FRAMED_COOKIE_OPTIONS, **({"path": base_url} if base_url else {})}
    kept = [arg for arg in args if arg not in added_before]
    ours: list[str] = []
    notes: list[str] = []
    if server_settings:
        # traitlets reads a dict given whole as a Python literal (a deprecated form it keeps): the only
        # one that carries nested values and True.
        setting = f"{SERVER_SETTINGS_ARG}={server_settings!r}"
        if any(arg.startswith(SERVER_SETTINGS_ARG) for arg in kept):
            # A second one would replace the admin's, or stop the server.
            notes.append(f"Spawner.args sets {SERVER_SETTINGS_ARG}: add {server_settings!r} to it")
        else:
            ours.append(setting)
    if cookies:
        if any(arg.startswith(SERVER_EXTENSIONS_ARG + "={") for arg in kept):
            # traitlets cannot mix the dict-literal form with key=value items.
            notes.append(f"Spawner.args sets {SERVER_EXTENSIONS_ARG}: add {{{EXTENSION!r}: True}} to it")
        else:
            ours.append(f"{SERVER_EXTENSIONS_ARG}={EXTENSION}=True")
    return [*ours, *kept], ours, notes


# -- the users' servers' extension (jupyter-server) --------------------------------------------------


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """In a user's server: its ``SameSite=None; Secure`` cookies become ``Partitioned`` as well."""
    if PartitionedCookies not in serverapp.web_app.transforms:
        serverapp.web_app.add_transform(PartitionedCookies)
    serverapp.log.info("jupyter_lti.frames: SameSite=None cookies are Partitioned")
