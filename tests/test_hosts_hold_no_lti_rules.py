"""The hosts are adapters: no host module names an LTI claim, role or scope URI, an OAuth or JWT
detail, a digest, or a username rule. Those belong to lti_core, written once for both hosts.

Like the framework-free test of lti_core, this reads code, not prose: docstrings and the help text of
configuration options (which link the specs) are left out; every other string constant, import and
name counts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("lti_xblock", "jupyter_lti")
# Django's migrations restate the models' column names; they are generated, not written.
SKIPPED_PARTS = {"migrations"}

FORBIDDEN_IMPORTS = {"hashlib", "hmac", "jwt", "joserfc", "jwcrypto", "oauthlib", "cryptography"}
FORBIDDEN_TEXT = {
    "an LTI claim, role or scope URI": re.compile(r"purl\.imsglobal\.org|urn:lti:"),
    # /hub/lti13/oauth_login and oauth_callback are URL names jupyterhub-ltiauthenticator chose.
    "an OAuth 1.0a parameter": re.compile(r"\boauth_(?!login\b|callback\b)"),
    "an LTI 1.1 launch parameter": re.compile(r"\blis_(person|outcome|result)\w*|\bcustom_\w+_url\b"),
    "a JWS algorithm": re.compile(r"\b(RS|HS|ES|PS)(256|384|512)\b"),
    "a tool configuration document": re.compile(r"imsglobal\.org/xsd|cartridge_basiclti|oidc_initiation_url"),
    "a frame-ancestors rule": re.compile(r"frame-ancestors"),
    "an LTI page's text": re.compile(r"could not be completed|Reason code"),
}
FORBIDDEN_NAMES = {
    "hexdigest",
    "free_username",
    "_UNSAFE_IN_USERNAME",
    # The sweep policy (lti_core.lti13.login.OidcLogin.sweep), the redirect rules of the HTTP port
    # (lti_core.http.redirected), where a launch lands (lti_core.landing), the store's algorithms
    # (lti_core.records) and cache: written once, in the core.
    "randbelow",
    "urljoin",
    "parse_qsl",
    "nonce_digest",
    "on_conflict_do_nothing",
    "OrderedDict",
}


def host_modules() -> list[Path]:
    return sorted(
        path
        for host in HOSTS
        for path in (ROOT / host).rglob("*.py")
        if not SKIPPED_PARTS & set(path.relative_to(ROOT).parts)
    )


def _prose(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are prose: docstrings and ``help=`` texts."""
    prose: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                prose.add(id(first.value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            prose.update(id(part) for part in ast.walk(node.value))
    return prose


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    prose = _prose(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_IMPORTS]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in FORBIDDEN_NAMES:
                found.append(f"line {node.lineno}: uses {name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            for what, pattern in FORBIDDEN_TEXT.items():
                if pattern.search(node.value):
                    found.append(f"line {node.lineno}: names {what}: {node.value[:60]!r}")
    return found


@pytest.mark.parametrize("path", host_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_host_module_holds_no_lti_rule(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


def test_the_hosts_were_found():
    names = {str(p.relative_to(ROOT)) for p in host_modules()}
    assert {"lti_xblock/views.py", "jupyter_lti/auth.py", "jupyter_lti/handlers.py"} <= names


@pytest.mark.parametrize(
    "source",
    [
        'ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"\n',
        'AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"\n',
        'key = params["oauth_consumer_key"]\n',
        'url = params.get("lis_outcome_service_url")\n',
        'ALG = ["RS256"]\n',
        "import hashlib\n",
        "from oauthlib.oauth1 import Client\n",
        "name = digest.hexdigest()[:8]\n",
        'role = "urn:lti:role:ims/lis/Instructor"\n',
        "xml = \"<cartridge_basiclti_link xmlns='http://www.imsglobal.org/xsd/imslticc_v1p0'>\"\n",
        'csp = "frame-ancestors " + sources\n',
        "if secrets.randbelow(200) == 0: store.purge_expired(now)\n",
        "target = urljoin(request.url, location)\n",
        'title = _("This launch could not be completed")\n',
    ],
)
def test_the_check_catches_each_kind_of_rule(source: str) -> None:
    assert violations(source)


def test_the_check_leaves_prose_alone() -> None:
    source = (
        '"""Reads urn:lti: roles and oauth_nonce (RS256), as https://purl.imsglobal.org/spec/lti/claim says."""\n'
        'x = Unicode(help="See the RS256 and lis_person_name_full docs")\n'
        'def f():\n    """Uses oauth_signature."""\n'
    )
    assert violations(source) == []
