"""The wheel is what Open edX installs: build it, install it with [xblock] in a fresh venv, use it there.

This proves the assets, the catalogs and the XBlock work from site-packages, away from the checkout
(static/ and translations/ ship as the package `lti_publish_assets`). It takes ~30-60 s.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# Never copied into the build tree: stale build/ output would otherwise end up in the wheel.
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".demo",
    "*.db",
)

CHECK = textwrap.dedent(
    """
    from pathlib import Path

    import lti_core
    import lti_publish_assets
    from lti_publish_assets import STATIC_DIR, TRANSLATIONS_DIR, static_text

    # Everything comes from the installed wheel, not from a checkout.
    for module in (lti_core, lti_publish_assets):
        assert "site-packages" in module.__file__, module.__file__

    css = static_text("css/lti_publish.css")
    assert ".lti-error" in css and ".lti-launch-details" in css, css[:200]
    assert (STATIC_DIR / "js" / "studio.js").is_file()
    assert "LtiPublishStudio" in static_text("js/studio.js")
    assert (Path(lti_publish_assets.__file__).parent / "js" / "studio.js").is_file()

    from lti_core.errors import AuthenticationFailed, LtiError
    from lti_core.i18n import translation

    assert (TRANSLATIONS_DIR / "fr" / "LC_MESSAGES" / "lti_publish.mo").is_file(), TRANSLATIONS_DIR
    french = translation(str(TRANSLATIONS_DIR), "fr")
    for message in (LtiError.message, AuthenticationFailed.message):
        translated = french.gettext(message)
        assert translated != message, f"no French translation for {message!r}"
    assert translation(str(TRANSLATIONS_DIR), "fr-ca").gettext(LtiError.message) != LtiError.message

    from lti_xblock.block import LtiPublishBlock  # the entry point Open edX loads

    assert LtiPublishBlock.css_text() == css
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="xblock.v1") if e.name == "lti_publish"]
    assert entry.load() is LtiPublishBlock
    print("wheel check ok")
    """
)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    out = tmp_path / "dist"
    if importlib.util.find_spec("build") is not None:
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)], cwd=tmp_path)
    else:
        run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--use-pep517", "-w", str(out), str(source)],
            cwd=tmp_path,
        )
    wheels = list(out.glob("lti_publish-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_installs_and_works_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)

    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "lti_core/__init__.py",
        "lti_core/py.typed",
        "lti_xblock/__init__.py",
        "lti_publish_assets/__init__.py",
        "lti_publish_assets/css/lti_publish.css",
        "lti_publish_assets/js/studio.js",
        "lti_publish_assets/translations/__init__.py",
        "lti_publish_assets/translations/lti_publish.pot",
        "lti_publish_assets/translations/fr/LC_MESSAGES/lti_publish.po",
        "lti_publish_assets/translations/fr/LC_MESSAGES/lti_publish.mo",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"
    # Checkout-only code: the tests, the benchmarks and the platform peer they and the demo launch from.
    assert not any(n.startswith(("tests/", "static/", "translations/", "bench/", "lti_peer/")) for n in names)
    # The demo (settings, launch page, demo hub, the hub machinery the tests share) stays in the checkout:
    # no module, template or other file of it, and no top-level package of that name.
    assert [n for n in names if "demo" in n.lower()] == [], "demo code in the wheel"
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    shipped = set(zipfile.ZipFile(wheel).read(top_level).decode().split())
    assert shipped == {"jupyter_lti", "lti_core", "lti_publish_assets", "lti_xblock"}, shipped

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "DJANGO_SETTINGS_MODULE")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[xblock]"], cwd=tmp_path, env=env)

    script = tmp_path / "check_wheel.py"
    script.write_text(CHECK)
    # -I: ignore PYTHONPATH and user site; run from tmp_path so the checkout is nowhere on sys.path.
    result = run([str(python), "-I", str(script)], cwd=tmp_path, env=env, timeout=300)
    assert "wheel check ok" in result.stdout
    no_demo = run([str(python), "-I", "-c", "import importlib.util as u; print(u.find_spec('demo'))"], cwd=tmp_path)
    assert no_demo.stdout == "None\n"

    # The console script, from a directory that is not the checkout: its help and version need no
    # settings; a command without DJANGO_SETTINGS_MODULE says so, exits 2 and writes nothing.
    script_dir = tmp_path / "elsewhere"
    script_dir.mkdir()
    lti_publish = str(env_dir / "bin" / "lti-publish")
    helped = run([lti_publish, "--help"], cwd=script_dir, env=env)
    assert "issue-consumer" in helped.stdout and "lti_issue_consumer" not in helped.stdout
    assert run([lti_publish, "--version"], cwd=script_dir, env=env).stdout.startswith("lti-publish ")
    refused = subprocess.run(
        [lti_publish, "issue-consumer", "--name", "Moodle"], cwd=script_dir, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "DJANGO_SETTINGS_MODULE" in refused.stderr, refused
    assert list(script_dir.iterdir()) == []
