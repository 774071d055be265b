"""lti-publish: let a learning platform be the tool in LTI 1.1 and LTI 1.3."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def package_tree(top: str) -> list[str]:
    """Every file below `top`, relative to the repository, for data_files-free shipping."""
    return [str(p.relative_to(HERE)) for p in (HERE / top).rglob("*") if p.is_file()]


setup(
    name="lti-publish",
    version="0.1.0",
    description="Publish Open edX and JupyterHub content as an LTI 1.1 / LTI 1.3 tool",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="AGPL-3.0",
    python_requires=">=3.11",
    # Only the three shipped packages: the demo (demo/, with the hub machinery the tests share), the
    # platform peer (lti_peer/), the tests and the benchmarks stay in the checkout, never in the wheel.
    packages=find_packages(
        include=["lti_core", "lti_core.*", "lti_xblock", "lti_xblock.*", "jupyter_lti", "jupyter_lti.*"],
        exclude=["demo", "demo.*", "lti_peer", "lti_peer.*", "tests", "tests.*", "bench", "bench.*"],
    )
    + ["lti_publish_assets", "lti_publish_assets.translations"],
    # static/ and translations/ live at the top of the repository and ship inside the wheel as the
    # package `lti_publish_assets` (static/__init__.py says where things are), so every host finds
    # them next to its installed code, never through a path relative to a checkout.
    package_dir={
        "lti_publish_assets": "static",
        "lti_publish_assets.translations": "translations",
    },
    package_data={
        "lti_core": ["py.typed"],
        "lti_xblock": ["templates/lti_xblock/*.html"],
        # The hub store's Alembic history: env.py and versions/*.py ship as the packages
        # jupyter_lti.migrations(.versions); the template of new revisions is data.
        "jupyter_lti.migrations": ["script.py.mako"],
        "lti_publish_assets": ["css/*.css", "js/*.js", "html/*.html"],
        "lti_publish_assets.translations": ["*/LC_MESSAGES/*.po", "*/LC_MESSAGES/*.mo", "*.pot"],
    },
    include_package_data=False,
    install_requires=[
        "joserfc>=1.8,<2",
        "cryptography>=42",
        "oauthlib>=3.2",
        "defusedxml>=0.7",
    ],
    extras_require={
        "xblock": [
            # Both the Open edX releases on Django 4.2 + XBlock 5 (tests/openedx runs one) and those on
            # Django 5.2 + XBlock 6 (Ulmo and later; the workbench of the demo and the tests).
            "Django>=4.2,<5.3",
            "XBlock>=5,<7",
            "web-fragments>=2",
            "lazy>=1.4",  # xblock.django.request needs it, XBlock does not declare it
            "edx-django-utils>=5",
        ],
        "jupyterhub": [
            "jupyterhub>=5",
            "jupyterlab>=4",  # the single-user server the hub spawns (brings jupyter_server)
            "nbgitpuller>=1.2",  # the catalog's git items: the spawned server's git-pull pulls them on launch
        ],
        "demo": [
            "xblock-sdk>=0.14",
        ],
        "test": [
            "pytest>=8",
            "pytest-django>=4.9",
            "pytest-timeout>=2",
            "pytest-xdist>=3.5",  # make test's two workers
            "requests>=2.31",
            "pyjwt[crypto]>=2.8",
            "pylti1p3>=2",
            "jupyterhub-ltiauthenticator>=1.6",
            "psycopg[binary]>=3.1",
            "mysqlclient>=2.2",  # the MariaDB/MySQL driver Open edX uses; builds against libmariadb-dev
            "ruff>=0.6",
            "mypy>=1.10",
            "types-oauthlib",
            "django-stubs>=5.2,<5.3",  # lti_xblock under mypy --strict
            "celery>=5.3,<6",  # a real worker runs the grade delivery task (edx-platform pins 5.5)
            "celery-types>=0.22",  # lti_xblock.tasks under mypy --strict
            "build>=1",
            "Babel>=2.14",
            "hypothesis>=6.100",
            "selenium>=4.20",  # drives Debian's chromium (tests/services/chromium.sh) in tests/browser
        ],
    },
    entry_points={
        "xblock.v1": ["lti_publish = lti_xblock.block:LtiPublishBlock"],
        "lms.djangoapp": ["lti_xblock = lti_xblock.apps:LtiXBlockConfig"],
        "cms.djangoapp": ["lti_xblock = lti_xblock.apps:LtiXBlockConfig"],
        "console_scripts": [
            "lti-publish = lti_xblock.cli:main",
            "jupyter-lti-score = jupyter_lti.score_cli:main",
        ],
        "jupyterhub.authenticators": [
            "lti = jupyter_lti.lti:LTIAuthenticator",
            "lti11 = jupyter_lti.lti11:LTI11Authenticator",
            "lti13 = jupyter_lti.lti13:LTI13Authenticator",
        ],
    },
    classifiers=[
        "Framework :: Django :: 5.2",
        "Programming Language :: Python :: 3.11",
    ],
    zip_safe=False,
)
