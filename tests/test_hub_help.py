"""What `jupyterhub --help-all` and `jupyterhub --generate-config` show of the LTI authenticators.

Both list every configurable class JupyterHub finds through the `jupyterhub.authenticators` entry
points, with the options of each class and of its parents. Our authenticators once inherited
jupyterhub-ltiauthenticator's classes of the same names as well, so each option came out twice,
first with ltiauthenticator's help: these run the real commands and count.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from jupyter_lti.lti import LTIAuthenticator
from jupyter_lti.lti11 import LTI11Authenticator
from jupyter_lti.lti13 import LTI13Authenticator

pytestmark = pytest.mark.slow

JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"
CLASSES = [LTI11Authenticator, LTI13Authenticator, LTIAuthenticator]


def bases(cls: type) -> str:
    """The parents JupyterHub names in a class's header: ``LTIAuthenticator(LTI13Authenticator, ...)``."""
    return ", ".join(base.__name__ for base in cls.__bases__)


def run(*args: str, cwd: Path) -> str:
    result = subprocess.run([str(JUPYTERHUB), *args], cwd=cwd, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def help_all(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run("--help-all", cwd=tmp_path_factory.mktemp("help"))


@pytest.fixture(scope="module")
def generated_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = tmp_path_factory.mktemp("generate-config")
    run("--generate-config", "-f", "jupyterhub_config.py", cwd=where)
    return (where / "jupyterhub_config.py").read_text()


def option_blocks(help_text: str, class_name: str) -> dict[str, list[str]]:
    """Each `--Class.option=...` of the help, with the help lines under it; asserts none is repeated."""
    blocks: dict[str, list[str]] = {}
    seen: Counter[str] = Counter()
    current: list[str] | None = None
    for line in help_text.splitlines():
        match = re.match(rf"--{class_name}\.(\w+)=", line)
        if match:
            seen[match.group(1)] += 1
            current = blocks.setdefault(match.group(1), [])
        elif current is not None and (line.startswith("    ") or not line.strip()):
            current.append(line)
        else:
            current = None
    assert not [name for name, count in seen.items() if count > 1], f"listed twice: {seen}"
    return blocks


def squeezed(text: str) -> str:
    """Text without whitespace: the help is rewrapped (also at hyphens), its words are not changed."""
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_help_all_lists_each_option_once_with_our_help(cls, help_all):
    name = cls.__name__
    headers = [line for line in help_all.splitlines() if re.match(rf"{name}\(.*\) options$", line)]
    assert headers == [f"{name}({bases(cls)}) options"]

    blocks = option_blocks(help_all, name)
    traits = cls.class_traits(config=True)
    assert set(blocks) == set(traits)
    for option, trait in traits.items():
        if trait.this_class.__module__.startswith("jupyter_lti"):
            # Ours, not jupyterhub-ltiauthenticator's weaker help under the same name.
            assert squeezed(trait.help)[:60] in squeezed("\n".join(blocks[option])), option
    # Spot checks of what only our help says.
    assert "https://www.imsglobal.org/spec" in " ".join(blocks["uri_scheme"])
    assert "trusted_proxies" in " ".join(blocks["uri_scheme"])


def test_help_all_lists_no_class_of_jupyterhub_ltiauthenticator(help_all):
    headers = [line for line in help_all.splitlines() if re.match(r"\w+\(.*\) options$", line)]
    lti_headers = sorted(h for h in headers if "LTI" in h or "Lti" in h)
    assert lti_headers == [
        "LTI11Authenticator(LtiAuthenticator) options",
        "LTI13Authenticator(LtiAuthenticator) options",
        "LTIAuthenticator(LTI13Authenticator, LTI11Authenticator) options",
        "LtiAuthenticator(Authenticator) options",
    ]
    # The entry points JupyterHub lists as `authenticator_class` shortcuts.
    assert "lti: jupyter_lti.lti.LTIAuthenticator" in help_all
    assert "lti11: jupyter_lti.lti11.LTI11Authenticator" in help_all
    assert "lti13: jupyter_lti.lti13.LTI13Authenticator" in help_all


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_generated_config_has_one_section_with_each_option_once(cls, generated_config):
    name = cls.__name__
    headers = re.findall(rf"^# ({name}\(.*\)) configuration$", generated_config, flags=re.MULTILINE)
    assert headers == [f"{name}({bases(cls)})"]
    options = Counter(re.findall(rf"^# c\.{name}\.(\w+) = ", generated_config, flags=re.MULTILINE))
    assert options == Counter(list(cls.class_traits(config=True)))  # every option, each once


def test_the_authenticators_do_not_import_jupyterhub_ltiauthenticator(tmp_path):
    """jupyterhub-ltiauthenticator is a test and benchmark peer only, not something the hub runs on."""
    code = (
        "import sys, jupyter_lti.lti, jupyter_lti.lti11, jupyter_lti.lti13\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ltiauthenticator'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
