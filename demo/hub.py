"""The demo's JupyterHub beside the workbench: started by `make demo`, trusting the local launch page.

demo.demohub runs the hub; this module registers the demo platform with it, picks its ports and
tells the launch page (through the environment of this process) whether it runs.

    LTI_PUBLISH_HUB=0                    no hub
    LTI_PUBLISH_HUB_PORT=8001            its public port (the proxy's)
    LTI_PUBLISH_HUB_PROXY_API_PORT=8002  the proxy's API
    LTI_PUBLISH_HUB_INTERNAL_PORT=8003   the hub itself, behind the proxy
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from demo.platform import DEPLOYMENT_ID, HUB_CLIENT_ID, HUB_ERROR_ENV, HUB_URL_ENV, issuer

if TYPE_CHECKING:
    from demo.demohub import DemoHub, HubPorts


def enabled() -> bool:
    return os.environ.get("LTI_PUBLISH_HUB", "1").strip().lower() not in ("0", "no", "off", "false")


def ports() -> HubPorts:
    from demo.demohub import HubPorts

    default = HubPorts()
    return HubPorts(
        public=int(os.environ.get("LTI_PUBLISH_HUB_PORT", default.public)),
        proxy_api=int(os.environ.get("LTI_PUBLISH_HUB_PROXY_API_PORT", default.proxy_api)),
        hub=int(os.environ.get("LTI_PUBLISH_HUB_INTERNAL_PORT", default.hub)),
    )


def start(base: str, host: str, var_dir: Path) -> tuple[DemoHub | None, str]:
    """Start the hub for the demo platform served at ``base``: (the hub or None, the text to print)."""
    os.environ.pop(HUB_URL_ENV, None)
    if not enabled():
        reason = "turned off with LTI_PUBLISH_HUB=0"
        os.environ[HUB_ERROR_ENV] = reason
        return None, f"JupyterHub: not started ({reason}).\n"
    print(f"Starting the demo JupyterHub (log: {var_dir / 'jupyterhub' / 'jupyterhub.log'}) ...", flush=True)
    try:
        from demo.demohub import DemoHub, DemoPlatform, HubNotStarted

        platform = DemoPlatform(
            issuer=issuer(base),
            client_id=HUB_CLIENT_ID,
            authorize_url=f"{base}/demo/platform/auth",
            jwks_endpoint=f"{base}/demo/platform/jwks",
            token_url=f"{base}/demo/platform/token",
            deployment_id=DEPLOYMENT_ID,
        )
        hub = DemoHub(var_dir / "jupyterhub", platform, host=host, ports=ports())
        hub.start()
    except ImportError as error:
        reason = f"{error} (`make demo` installs the jupyterhub extra)"
    except HubNotStarted as error:
        reason = str(error)
    except (OSError, ValueError) as error:
        reason = f"{type(error).__name__}: {error}"
    else:
        os.environ.pop(HUB_ERROR_ENV, None)
        os.environ[HUB_URL_ENV] = hub.url
        return hub, "\n".join(hub.instructions())
    os.environ[HUB_ERROR_ENV] = reason.splitlines()[0]
    return None, f"JupyterHub: NOT started; the workbench demo runs without it. Why: {reason}\n"
