"""The Store contract: every Store implementation (memory; Django and the hub's SQLAlchemy store, each
on SQLite, PostgreSQL and MariaDB) must pass the same tests. Later hosts add themselves to STORES."""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from jupyter_lti.store import SqlAlchemyStore
from lti_core.lti13.tool_keys import generate_tool_key
from lti_core.memory import MemoryStore
from lti_core.outbox import OutboxEntry, OutboxKey, OutboxState, Score, ServiceKind, lti11_target
from lti_core.records import TABLES
from lti_core.store import Store
from lti_core.types import (
    AgsEndpoint,
    BasicOutcome,
    Consumer,
    Deployment,
    LaunchContext,
    LaunchServices,
    NrpsEndpoint,
    OidcState,
    Registration,
    RegistrationStatus,
    Role,
    ToolKey,
    UserLink,
)


@dataclass
class StoreUnderTest:
    store: Store
    make_user: Callable[[str], str]  # username -> local user id
    threads_share_db: bool = True
    # Django opens a connection per thread: threads the tests start close theirs.
    django: bool = False


def _django(alias: str) -> StoreUnderTest:
    from django.contrib.auth import get_user_model

    from lti_xblock.store import DjangoStore

    def make_user(name: str) -> str:
        return str(get_user_model().objects.db_manager(alias).create_user(username=name).pk)

    return StoreUnderTest(DjangoStore(using=alias), make_user, django=True)


# The test servers' DSNs (tests/services/*.sh) use the default drivers' schemes; the hub's
# SQLAlchemy URLs name theirs.
SQLALCHEMY_SERVERS = {
    "postgresql": ("LTI_TEST_POSTGRES_DSN", "postgresql+psycopg", {}),
    "mariadb": ("LTI_TEST_MYSQL_DSN", "mysql+mysqldb", {"charset": "utf8mb4"}),
}


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database on a test server, dropped afterwards.

    The MariaDB one defaults to a case-insensitive collation, as Open edX's and most hubs' do: the
    store's identifier columns must not inherit it.
    """
    variable, driver, query = SQLALCHEMY_SERVERS[server]
    dsn = os.environ.get(variable)
    assert dsn, f"{variable} is not set: run the suite with `make test`"
    url = make_url(dsn).set(drivername=driver).update_query_dict(query)
    name = f"lti_sa_{uuid.uuid4().hex[:16]}"  # tests/services/mariadb.sh grants lti_%
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    options = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" if server == "mariadb" else ""
    quoted = admin.dialect.identifier_preparer.quote_identifier(name)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {quoted}{options}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        force = " WITH (FORCE)" if server == "postgresql" else ""
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
        admin.dispose()


@contextmanager
def _sqlalchemy(kind: str, tmp_path: Path) -> Iterator[StoreUnderTest]:
    @contextmanager
    def url() -> Iterator[str]:
        if kind == "sqlite":
            yield f"sqlite:///{tmp_path / 'lti_publish.sqlite'}"
        elif kind == "memory":
            yield "sqlite://"
        else:
            with scratch_database(kind) as scratch:
                yield scratch

    with url() as database:
        store = SqlAlchemyStore(database)
        try:
            # Local users are JupyterHub usernames; the store has no user table to insert into.
            yield StoreUnderTest(store, lambda name: name)
        finally:
            store.close()


STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("default", id="django-sqlite", marks=pytest.mark.django_db(transaction=True)),
    pytest.param(
        "postgres",
        id="django-postgresql",
        marks=[pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=["default", "postgres"])],
    ),
    pytest.param(
        "mysql",
        id="django-mariadb",
        marks=[pytest.mark.mysql, pytest.mark.django_db(transaction=True, databases=["default", "mysql"])],
    ),
    pytest.param("sqlalchemy:sqlite", id="sqlalchemy-sqlite"),
    pytest.param("sqlalchemy:memory", id="sqlalchemy-sqlite-memory"),
    pytest.param("sqlalchemy:postgresql", id="sqlalchemy-postgresql", marks=pytest.mark.postgres),
    pytest.param("sqlalchemy:mariadb", id="sqlalchemy-mariadb", marks=pytest.mark.mysql),
]


@pytest.fixture(params=STORES)
def sut(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    if request.param == "memory":
        yield StoreUnderTest(MemoryStore(), lambda name: f"user:{name}")
        return
    if request.param.startswith("sqlalchemy:"):
        with _sqlalchemy(request.param.removeprefix("sqlalchemy:"), request.getfixturevalue("tmp_path")) as under_test:
            yield under_test
        return
    if request.param == "postgres":
        from django.conf import settings

        assert "postgres" in settings.DATABASES, "LTI_TEST_POSTGRES_DSN is not set: run the suite with `make test`"
    if request.param == "mysql":
        from django.conf import settings

        assert "mysql" in settings.DATABASES, "LTI_TEST_MYSQL_DSN is not set: run the suite with `make test`"
    yield _django(request.param)


def registration(**changes: Any) -> Registration:
    base: dict[str, Any] = {
        "issuer": "https://moodle.example",
        "client_id": "abc",
        "auth_login_url": "https://moodle.example/mod/lti/auth.php",
        "auth_token_url": "https://moodle.example/mod/lti/token.php",
        "key_set_url": "https://moodle.example/mod/lti/certs.php",
        "deployments": (Deployment("2"),),
        "name": "Moodle",
    }
    base.update(changes)
    return Registration(**base)


def test_registrations(sut: StoreUnderTest) -> None:
    store = sut.store
    assert store.get_registration("https://moodle.example", "abc") is None
    store.save_registration(registration())
    store.save_registration(registration(client_id="xyz", deployments=(Deployment("5"), Deployment("6", "second"))))
    assert store.get_registration("https://moodle.example", "abc") == registration()
    assert [r.client_id for r in store.find_registrations("https://moodle.example")] == ["abc", "xyz"]
    assert store.find_registrations("https://other.example") == []
    store.save_registration(registration(issuer="https://canvas.example", client_id="10"))
    listed = store.list_registrations()
    assert [(r.issuer, r.client_id) for r in listed] == [
        ("https://canvas.example", "10"),
        ("https://moodle.example", "abc"),
        ("https://moodle.example", "xyz"),
    ]
    assert listed[2].deployments == (Deployment("5"), Deployment("6", "second"))
    # Saving again replaces URLs and the deployment list.
    store.save_registration(registration(key_set_url="https://moodle.example/new", deployments=(Deployment("3"),)))
    saved = store.get_registration("https://moodle.example", "abc")
    assert saved is not None and saved.key_set_url == "https://moodle.example/new"
    assert saved.deployments == (Deployment("3"),)
    other = store.get_registration("https://moodle.example", "xyz")
    assert other is not None and other.deployments == (Deployment("5"), Deployment("6", "second"))
    assert not other.any_deployment and not other.has_deployment("7")
    store.save_registration(registration(client_id="any", deployments=(), any_deployment=True))
    open_registration = store.get_registration("https://moodle.example", "any")
    assert open_registration is not None and open_registration.any_deployment
    assert open_registration.has_deployment("7") and not open_registration.has_deployment("")


def test_registration_status_round_trips(sut: StoreUnderTest) -> None:
    store = sut.store
    store.save_registration(registration(status=RegistrationStatus.PENDING))
    assert store.get_registration("https://moodle.example", "abc") == registration(status=RegistrationStatus.PENDING)
    store.save_registration(registration(status=RegistrationStatus.DISABLED))
    found = store.get_registration("https://moodle.example", "abc")
    assert found is not None and found.status is RegistrationStatus.DISABLED
    store.save_registration(registration())
    found = store.get_registration("https://moodle.example", "abc")
    assert found is not None and found.status is RegistrationStatus.ACTIVE


def test_delete_registration_takes_its_deployments_and_only_it(sut: StoreUnderTest) -> None:
    store = sut.store
    assert not store.delete_registration("https://moodle.example", "abc")
    store.save_registration(registration(deployments=(Deployment("2"), Deployment("3"))))
    store.save_registration(registration(client_id="xyz"))
    assert store.get_registration("https://moodle.example", "abc") is not None  # read (and cached, if cached)
    assert store.delete_registration("https://moodle.example", "abc")
    assert store.get_registration("https://moodle.example", "abc") is None
    assert not store.delete_registration("https://moodle.example", "abc")
    assert [(r.client_id, r.deployments) for r in store.list_registrations()] == [("xyz", (Deployment("2"),))]
    # Registered again: a new registration, without the old deployments.
    store.save_registration(registration(deployments=(Deployment("9"),)))
    found = store.get_registration("https://moodle.example", "abc")
    assert found is not None and found.deployments == (Deployment("9"),)
    assert not store.delete_registration("https://MOODLE.example", "abc") and not store.delete_registration(
        "https://moodle.example", "ABC"
    )


def test_consumers(sut: StoreUnderTest) -> None:
    store = sut.store
    assert store.get_consumer("key") is None
    store.save_consumer(Consumer("key", "secret", "Moodle"))
    assert store.get_consumer("key") == Consumer("key", "secret", "Moodle")
    store.save_consumer(Consumer("key", "new-secret", "Moodle"))
    assert store.get_consumer("key") == Consumer("key", "new-secret", "Moodle")
    store.save_consumer(Consumer("canvas", "s", "Canvas", enabled=False))
    assert store.list_consumers() == [Consumer("canvas", "s", "Canvas", False), Consumer("key", "new-secret", "Moodle")]
    assert store.delete_consumer("canvas") and not store.delete_consumer("canvas")
    long_secret = "s" * 1000  # an admin's own secret may be long, and grows when sealed at rest
    store.save_consumer(Consumer("long", long_secret))
    found = store.get_consumer("long")
    assert found is not None and found.secret == long_secret
    store.delete_consumer("long")
    assert [c.key for c in store.list_consumers()] == ["key"]


def test_nonces_are_single_use_per_scope_until_they_expire(sut: StoreUnderTest) -> None:
    store, now = sut.store, time.time()
    assert store.consume_nonce("lti11:a", "n1", now + 60, now) is True
    assert store.consume_nonce("lti11:a", "n1", now + 60, now) is False
    assert store.consume_nonce("lti11:b", "n1", now + 60, now) is True
    long_nonce = "x" * 2000  # LTI 1.1 nonces have no length limit
    assert store.consume_nonce("lti11:a", long_nonce, now + 60, now) is True
    assert store.consume_nonce("lti11:a", long_nonce, now + 60, now) is False
    later = now + 120
    assert store.consume_nonce("lti11:a", "n1", later + 60, later) is True  # expired: reusable
    assert store.consume_nonce("lti11:a", "n1", later + 60, later) is False


def test_concurrent_nonce_consumption_has_one_winner(sut: StoreUnderTest) -> None:
    store, now = sut.store, time.time()
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def consume() -> None:
        barrier.wait()
        try:
            results.append(store.consume_nonce("race", "same", now + 60, now))
        finally:
            if sut.django:
                from django.db import connections

                connections.close_all()

    threads = [threading.Thread(target=consume) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


def test_oidc_state(sut: StoreUnderTest) -> None:
    store, now = sut.store, time.time()
    # Everything the login initiation sent is kept: the relaunch in a new window needs it.
    state = OidcState(
        "s1",
        "n1",
        "https://moodle.example",
        "abc",
        "https://tool/x/",
        now + 300,
        login_hint="2" * 4096,
        lti_message_hint='{"cmid":3,"launchid":"ltilaunch1_1"}' + "m" * 8000,
        deployment_id="2",
        storage_target="post_message_forwarding",
    )
    store.save_state(state)
    store.save_state(OidcState("old", "n2", "https://moodle.example", "abc", "https://tool/x/", now - 1))
    assert store.get_state("s1", now) == state
    assert store.get_state("s1", now + 301) is None
    assert store.get_state("old", now) is None
    assert store.get_state("nope", now) is None
    store.consume_nonce("scope", "expired", now - 1, now - 100)
    assert store.purge_expired(now) == 2  # the old state and the expired nonce
    store.delete_state("s1")
    assert store.get_state("s1", now) is None


def test_tool_keys(sut: StoreUnderTest) -> None:
    store = sut.store
    assert store.list_tool_keys() == []
    first = generate_tool_key()
    store.save_tool_key(first)
    time.sleep(0.01)
    second = generate_tool_key()
    store.save_tool_key(second)
    assert [k.kid for k in store.list_tool_keys()] == [second.kid, first.kid]
    assert store.list_tool_keys()[1] == first
    store.set_tool_key_active(first.kid, False)
    assert [k.active for k in store.list_tool_keys()] == [True, False]
    timed = dataclasses.replace(second, created_at=1_700_000_000.5, retires_at=1_700_086_400.25)
    store.save_tool_key(timed)
    assert store.list_tool_keys()[0] == timed


def test_user_links_are_permanent(sut: StoreUnderTest) -> None:
    store = sut.store
    alice, mallory = sut.make_user("alice"), sut.make_user("mallory")
    assert store.get_user_link("https://moodle.example", "2") is None
    link = UserLink("https://moodle.example", "2", alice)
    assert store.save_user_link(link) == link
    assert store.get_user_link("https://moodle.example", "2") == link
    # A second link for the same identity does not move it.
    assert store.save_user_link(UserLink("https://moodle.example", "2", mallory)) == link
    assert store.get_user_link("https://moodle.example", "2") == link
    assert store.get_user_link("other-consumer", "2") is None


def test_find_user_links(sut: StoreUnderTest) -> None:
    store = sut.store
    alice, mallory, nobody = sut.make_user("alice"), sut.make_user("mallory"), sut.make_user("nobody")
    links = [
        UserLink("https://moodle.example", "2", alice),
        UserLink("moodle-key", "7", alice),
        UserLink("https://canvas.example", "9", mallory),
    ]
    for link in links:
        store.save_user_link(link)
    assert store.find_user_links(alice) == sorted(links[:2], key=lambda link: (link.platform, link.platform_user_id))
    assert store.find_user_links(mallory) == [links[2]]
    assert store.find_user_links(nobody) == []
    if not sut.django:  # local ids are names (Django's are primary keys): look-alikes are other users
        assert store.find_user_links(alice.upper()) == store.find_user_links(alice + " ") == []


def test_list_user_links(sut: StoreUnderTest) -> None:
    store = sut.store
    assert store.list_user_links() == []
    alice, mallory = sut.make_user("alice"), sut.make_user("mallory")
    links = [
        UserLink("moodle-key", "7", alice),
        UserLink("https://moodle.example", "2", alice),
        UserLink("https://moodle.example", "10", mallory),
    ]
    for link in links:
        store.save_user_link(link)
    ordered = sorted(links, key=lambda link: (link.platform, link.platform_user_id))
    assert store.list_user_links() == ordered
    assert store.list_user_links("https://moodle.example") == ordered[:2]
    assert store.list_user_links("moodle-key") == [links[0]]
    assert store.list_user_links("https://MOODLE.example") == store.list_user_links("nobody") == []


# Identifiers are compared exactly: MySQL/MariaDB's default collations ignore case (and trailing
# spaces), which would let `ABC` read, overwrite or log in as `abc`.
LOOKALIKE_IDS = ("abc", "ABC", "abc ")


def test_registration_and_deployment_ids_are_case_sensitive(sut: StoreUnderTest) -> None:
    store = sut.store
    for client_id in LOOKALIKE_IDS:
        store.save_registration(registration(client_id=client_id, key_set_url=f"https://moodle.example/{client_id}"))
    store.save_registration(registration(issuer="https://MOODLE.example", client_id="abc", name="other issuer"))
    for client_id in LOOKALIKE_IDS:
        saved = store.get_registration("https://moodle.example", client_id)
        assert saved is not None and saved.key_set_url == f"https://moodle.example/{client_id}"
    assert sorted(r.client_id for r in store.find_registrations("https://moodle.example")) == sorted(LOOKALIKE_IDS)
    assert [r.name for r in store.find_registrations("https://MOODLE.example")] == ["other issuer"]
    assert store.get_registration("https://moodle.example", "Abc") is None
    deployments = tuple(Deployment(d, f"label {d}") for d in LOOKALIKE_IDS)
    store.save_registration(registration(deployments=deployments))
    saved = store.get_registration("https://moodle.example", "abc")
    assert saved is not None and saved.deployments == deployments


def test_consumer_keys_are_case_sensitive(sut: StoreUnderTest) -> None:
    store = sut.store
    for key in LOOKALIKE_IDS:
        store.save_consumer(Consumer(key, f"secret for {key}", "Moodle"))
    for key in LOOKALIKE_IDS:
        assert store.get_consumer(key) == Consumer(key, f"secret for {key}", "Moodle")
    assert store.get_consumer("Abc") is None


def test_nonces_and_scopes_are_case_sensitive(sut: StoreUnderTest) -> None:
    store, now = sut.store, time.time()
    for nonce in LOOKALIKE_IDS:
        assert store.consume_nonce("lti11:a", nonce, now + 60, now) is True
    assert store.consume_nonce("LTI11:A", "abc", now + 60, now) is True
    for nonce in LOOKALIKE_IDS:
        assert store.consume_nonce("lti11:a", nonce, now + 60, now) is False


def test_oidc_states_are_case_sensitive(sut: StoreUnderTest) -> None:
    store, now = sut.store, time.time()
    states = {
        s: OidcState(s, f"nonce {s}", "https://moodle.example", "abc", "https://tool/x/", now + 300)
        for s in LOOKALIKE_IDS
    }
    for state in states.values():
        store.save_state(state)
    for s, state in states.items():
        assert store.get_state(s, now) == state
    assert store.get_state("Abc", now) is None
    store.delete_state("ABC")
    assert store.get_state("ABC", now) is None
    assert store.get_state("abc", now) == states["abc"]
    assert store.get_state("abc ", now) == states["abc "]


def test_tool_key_ids_are_case_sensitive(sut: StoreUnderTest) -> None:
    store = sut.store
    key = generate_tool_key()
    for kid in LOOKALIKE_IDS:
        store.save_tool_key(ToolKey(kid, key.private_pem, {**key.public_jwk, "kid": kid}))
    store.set_tool_key_active("ABC", False)
    assert sorted((k.kid, k.active) for k in store.list_tool_keys()) == [("ABC", False), ("abc", True), ("abc ", True)]


def test_user_links_are_case_sensitive(sut: StoreUnderTest) -> None:
    store = sut.store
    links = [UserLink("https://moodle.example", uid, sut.make_user(f"user{i}")) for i, uid in enumerate(LOOKALIKE_IDS)]
    links.append(UserLink("https://MOODLE.example", "abc", sut.make_user("other platform")))
    for link in links:
        assert store.save_user_link(link) == link  # a new identity: never someone else's account
    for link in links:
        assert store.get_user_link(link.platform, link.platform_user_id) == link
    assert store.get_user_link("https://moodle.example", "Abc") is None


# Launch contexts ------------------------------------------------------------------------------
MOODLE_SERVICES = LaunchServices(
    ags=AgsEndpoint(
        lineitems_url="https://moodle.example/mod/lti/services.php/2/lineitems?type_id=1",
        lineitem_url="https://moodle.example/mod/lti/services.php/2/lineitems/5/lineitem?type_id=1",
        scopes=(
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ),
    ),
    nrps=NrpsEndpoint(
        "https://moodle.example/mod/lti/services.php/CourseSection/2/bindings/1/memberships", ("1.0", "2.0")
    ),
    basic_outcome=BasicOutcome("https://moodle.example/mod/lti/service.php", '{"data":{"instanceid":"5"}}'),
)


def context(local_user_id: str, **changes: Any) -> LaunchContext:
    values: dict[str, Any] = {
        "platform": "https://moodle.example",
        "platform_user_id": "2",
        "local_user_id": local_user_id,
        "resource_link_id": "5",
        "context_id": "2",
        "deployment_id": "1",
        "client_id": "abc",
        "lti_version": "1.3.0",
        "role": Role.LEARNER,
        "roles": ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",),
        "message_type": "LtiResourceLinkRequest",
        "services": MOODLE_SERVICES,
        "updated_at": 1_700_000_000.25,
    }
    return LaunchContext(**{**values, **changes})


def test_launch_contexts_latest_launch_wins(sut: StoreUnderTest) -> None:
    store = sut.store
    alice, mallory = sut.make_user("alice"), sut.make_user("mallory")
    assert store.get_launch_context("https://moodle.example", "2", "5") is None
    first = context(alice)
    store.save_launch_context(first)
    assert store.get_launch_context("https://moodle.example", "2", "5") == first
    # The same (platform, user, link) launched again: one row, the latest launch's values.
    latest = context(
        mallory,
        context_id="3",
        deployment_id="4",
        client_id="def",
        lti_version="1.1",
        role=Role.STAFF,
        roles=("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", "urn:lti:role:ims/lis/Mentor"),
        message_type="LtiSubmissionReviewRequest",
        services=LaunchServices(ags=AgsEndpoint(lineitems_url="https://moodle.example/lineitems")),
        updated_at=first.updated_at + 60,
    )
    store.save_launch_context(latest)
    assert store.get_launch_context("https://moodle.example", "2", "5") == latest
    assert store.find_launch_contexts(alice) == []
    assert store.find_launch_contexts(mallory) == [latest]
    assert store.get_launch_context("https://moodle.example", "2", "6") is None
    assert store.get_launch_context("https://moodle.example", "3", "5") is None
    assert store.get_launch_context("moodle-key", "2", "5") is None


def test_find_launch_contexts(sut: StoreUnderTest) -> None:
    store = sut.store
    alice, mallory, nobody = sut.make_user("alice"), sut.make_user("mallory"), sut.make_user("nobody")
    contexts = [
        context(alice, resource_link_id="5", updated_at=100.0),
        context(alice, platform="moodle-key", lti_version="1.1", updated_at=300.0),
        context(alice, resource_link_id="6", updated_at=200.0),
        context(mallory, platform_user_id="3", updated_at=400.0),
    ]
    for saved in contexts:
        store.save_launch_context(saved)
    assert store.find_launch_contexts(alice) == [contexts[1], contexts[2], contexts[0]]  # newest first
    assert store.find_launch_contexts(mallory) == [contexts[3]]
    assert store.find_launch_contexts(nobody) == []
    # A relaunch moves its context to the front.
    relaunched = context(alice, resource_link_id="5", updated_at=500.0)
    store.save_launch_context(relaunched)
    assert store.find_launch_contexts(alice) == [relaunched, contexts[1], contexts[2]]
    if not sut.django:  # local ids are names (Django's are primary keys): look-alikes are other users
        assert store.find_launch_contexts(alice.upper()) == store.find_launch_contexts(alice + " ") == []


@pytest.mark.parametrize(
    "services",
    [
        LaunchServices(),
        MOODLE_SERVICES,
        LaunchServices(ags=AgsEndpoint()),  # offered, with nothing in it: not the same as not offered
        LaunchServices(nrps=NrpsEndpoint("https://canvas.example/api/lti/courses/1/names_and_roles")),
        LaunchServices(basic_outcome=BasicOutcome("https://moodle.example/mod/lti/service.php", "")),
        LaunchServices(
            ags=AgsEndpoint(lineitem_url='https://plateforme.example/note?é=1&x="y"', scopes=("a", "A", "a ")),
            basic_outcome=BasicOutcome("https://plateforme.example/outcome", "sourcedid ünïcode 🙂"),
        ),
    ],
)
def test_launch_context_services_round_trip(sut: StoreUnderTest, services: LaunchServices) -> None:
    store = sut.store
    saved = context(sut.make_user("alice"), services=services, roles=())
    store.save_launch_context(saved)
    found = store.get_launch_context(saved.platform, saved.platform_user_id, saved.resource_link_id)
    assert found == saved
    assert found is not None and found.services == services


def test_launch_context_ids_are_case_sensitive(sut: StoreUnderTest) -> None:
    store = sut.store
    user = sut.make_user("alice")
    saved = [context(user, platform_user_id=uid, context_id=f"course {uid}") for uid in LOOKALIKE_IDS]
    saved += [context(user, resource_link_id=link, context_id=f"link {link}") for link in LOOKALIKE_IDS[1:]]
    saved.append(context(user, platform="https://MOODLE.example", context_id="other platform"))
    for ctx in saved:
        store.save_launch_context(ctx)
    for ctx in saved:
        assert store.get_launch_context(ctx.platform, ctx.platform_user_id, ctx.resource_link_id) == ctx
    assert store.get_launch_context("https://moodle.example", "Abc", "5") is None
    assert len(store.find_launch_contexts(user)) == len(saved)


# Django names the local user's column after its foreign key to Django's users.
_DJANGO_COLUMN = {"local_user_id": "user_id"}


# The schema both hosts' tables must have: lti_core.records.TABLES -----------------------------
@pytest.mark.parametrize("name", sorted(TABLES))
def test_django_models_have_the_core_schema(name: str) -> None:
    from lti_xblock.store import MODELS

    model = MODELS[name]
    columns = {field.attname for field in model._meta.concrete_fields}
    assert {_DJANGO_COLUMN.get(c, c) for c in TABLES[name].columns} <= columns
    key = tuple(_DJANGO_COLUMN.get(c, c) for c in TABLES[name].key)
    unique = [tuple(model._meta.get_field(f).attname for f in c.fields) for c in model._meta.constraints]
    unique += [(f.attname,) for f in model._meta.concrete_fields if f.unique and not f.primary_key]
    assert key in unique


@pytest.mark.parametrize("name", sorted(TABLES))
def test_hub_tables_have_the_core_schema(name: str) -> None:
    from jupyter_lti.store import TABLES as HUB_TABLES

    table = HUB_TABLES[name]
    assert set(TABLES[name].columns) <= set(table.columns.keys())
    unique = [tuple(c.name for c in constraint.columns) for constraint in table.constraints if constraint.columns]
    unique += [(c.name,) for c in table.columns if c.unique]
    assert TABLES[name].key in unique  # a unique constraint or the primary key


# The grade outbox (lti_core.outbox) --------------------------------------------------------------
OUTBOX_NOW = 1_760_000_000.0
LONG_LINEITEM = "https://moodle.example/mod/lti/services.php/2/lineitems/5/lineitem?type_id=1&" + "x" * 3000


def outbox_key(user: str = "2", target: str = LONG_LINEITEM) -> OutboxKey:
    return OutboxKey("https://moodle.example", user, target)


def _in_thread(sut: StoreUnderTest, work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        finally:
            if sut.django:
                from django.db import connections

                connections.close_all()

    return run


def test_outbox_enqueue_merges_the_latest_score(sut: StoreUnderTest) -> None:
    store, now = sut.store, OUTBOX_NOW
    key = outbox_key()
    assert store.get_outbox_entry(key) is None and store.list_outbox() == []
    first = store.enqueue_score(key, ServiceKind.AGS, Score(7.0, 10.0, comment="ünïcode 🙂"), now - 100, now)
    assert (first.state, first.version, first.next_attempt_at) == (OutboxState.PENDING, 1, now)
    assert store.get_outbox_entry(key) == first
    # An older score is ignored; the same one again changes nothing.
    assert store.enqueue_score(key, ServiceKind.AGS, Score(1.0, 10.0), now - 200, now + 1) == first
    assert (
        store.enqueue_score(key, ServiceKind.AGS, Score(7.0, 10.0, comment="ünïcode 🙂"), now - 100, now + 1) == first
    )
    newer = store.enqueue_score(key, ServiceKind.AGS, Score(None, None, "Started", "NotReady"), now - 10, now + 2)
    assert (newer.version, newer.score, newer.score_timestamp) == (
        2,
        Score(None, None, "Started", "NotReady"),
        now - 10,
    )
    assert store.get_outbox_entry(key) == newer
    # Other users, targets and look-alikes are other rows; the key's values are kept in full.
    lti11 = outbox_key(target=lti11_target("https://moodle.example/mod/lti/service.php", '{"data":"5"}'))
    store.enqueue_score(lti11, ServiceKind.LTI11_OUTCOME, Score(0.5, 1.0), now, now)
    store.enqueue_score(outbox_key("2 "), ServiceKind.AGS, Score(1.0, 10.0), now, now)
    listed = store.list_outbox()
    assert [e.key for e in listed] == [key, lti11, outbox_key("2 ")]
    assert listed[1].kind is ServiceKind.LTI11_OUTCOME and listed[0].key.target == LONG_LINEITEM
    assert store.outbox_counts() == {**dict.fromkeys(OutboxState, 0), OutboxState.PENDING: 3}


def test_outbox_claim_complete_and_stale_versions(sut: StoreUnderTest) -> None:
    store, now = sut.store, OUTBOX_NOW
    key, other = outbox_key("2"), outbox_key("3")
    store.enqueue_score(key, ServiceKind.AGS, Score(7.0, 10.0), now - 100, now)
    store.enqueue_score(other, ServiceKind.AGS, Score(5.0, 10.0), now - 100, now)
    claimed = store.claim_due(now + 1, 10, "w1", 60.0)
    assert [(e.key, e.state, e.claimed_by, e.attempts) for e in claimed] == [
        (key, OutboxState.IN_FLIGHT, "w1", 1),
        (other, OutboxState.IN_FLIGHT, "w1", 1),
    ]
    assert claimed[0].claim_expires_at == now + 61
    assert store.claim_due(now + 2, 10, "w2", 60.0) == []  # leases held
    assert store.get_outbox_entry(key) == claimed[0]
    # A newer score arrives while the old one is in flight: the old delivery does not settle it.
    newer = store.enqueue_score(key, ServiceKind.AGS, Score(9.0, 10.0), now - 5, now + 3)
    assert (newer.state, newer.version) == (OutboxState.PENDING, 2)
    assert store.complete(key, claimed[0].version, now + 4) is False
    assert store.fail(key, claimed[0].version, now + 4, retryable=True, rng=random.Random(1)) is None
    assert store.get_outbox_entry(key) == newer
    assert store.complete(other, claimed[1].version, now + 4, 204) is True
    done = store.get_outbox_entry(other)
    assert done is not None and (done.state, done.delivered_at, done.last_status) == (
        OutboxState.DELIVERED,
        now + 4,
        204,
    )
    assert store.complete(other, claimed[1].version, now + 5) is False  # twice: harmless, unchanged
    again = store.claim_due(now + 5, 10, "w2", 60.0)
    assert [(e.key, e.version, e.claimed_by) for e in again] == [(key, 2, "w2")]
    assert store.complete(key, 2, now + 6) is True
    assert store.outbox_counts()[OutboxState.DELIVERED] == 2
    assert store.complete(outbox_key("nobody"), 1, now) is False


def test_outbox_failures_and_retry_now(sut: StoreUnderTest) -> None:
    store, now = sut.store, OUTBOX_NOW
    key, other = outbox_key("2"), outbox_key("3")
    store.enqueue_score(key, ServiceKind.AGS, Score(7.0, 10.0), now, now)
    store.enqueue_score(other, ServiceKind.AGS, Score(5.0, 10.0), now, now)
    first, second = store.claim_due(now, 2, "w1", 60.0)
    retrying = store.fail(key, first.version, now + 1, retryable=True, status=503, error="busy", rng=random.Random(3))
    assert retrying is not None and retrying.state is OutboxState.RETRYING
    assert now + 1 <= retrying.next_attempt_at < now + 1 + 30 and retrying.last_status == 503
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIyIn0.c2ln"
    failed = store.fail(
        other, second.version, now + 1, retryable=False, status=400, error=f"bad score {token}", rng=random.Random(3)
    )
    assert failed is not None and (failed.state, failed.last_status) == (OutboxState.FAILED, 400)
    assert failed.last_error.startswith("bad score") and token not in failed.last_error
    assert store.get_outbox_entry(other) == failed
    assert store.list_outbox(OutboxState.FAILED) == [failed]
    # Not due before its backoff ends; FAILED never by itself.
    assert store.claim_due(retrying.next_attempt_at - 0.5, 10, "w2", 60.0) == []
    assert [e.key for e in store.claim_due(retrying.next_attempt_at, 10, "w2", 60.0)] == [key]
    # Much later: the retried entry's lease expired, it is claimed again; the FAILED one is not.
    assert [(e.key, e.claimed_by, e.attempts) for e in store.claim_due(now + 10_000, 10, "w3", 60.0)] == [
        (key, "w3", 3)
    ]
    assert store.get_outbox_entry(other) == failed
    assert store.retry_now(other, now + 2) is True
    assert store.retry_now(other, now + 2) is False  # pending already
    assert store.retry_now(outbox_key("nobody"), now) is False
    pending = store.get_outbox_entry(other)
    assert pending is not None and (pending.state, pending.last_status) == (OutboxState.PENDING, 400)
    assert [e.key for e in store.claim_due(now + 3, 10, "w4", 60.0)] == [other]


def test_outbox_expired_leases_are_claimed_again(sut: StoreUnderTest) -> None:
    store, now = sut.store, OUTBOX_NOW
    key = outbox_key()
    store.enqueue_score(key, ServiceKind.AGS, Score(7.0, 10.0), now, now)
    (claimed,) = store.claim_due(now, 5, "killed-worker", 30.0)
    assert store.claim_due(now + 29.5, 5, "w2", 30.0) == []
    (reclaimed,) = store.claim_due(now + 30, 5, "w2", 30.0)
    assert (reclaimed.claimed_by, reclaimed.attempts, reclaimed.version) == ("w2", 2, claimed.version)
    assert store.complete(key, reclaimed.version, now + 31) is True


def test_outbox_claims_respect_the_limit_and_racing_workers_get_disjoint_rows(sut: StoreUnderTest) -> None:
    store, now = sut.store, OUTBOX_NOW
    keys = [outbox_key(str(n), f"https://moodle.example/lineitems/{n}") for n in range(12)]
    for key in keys:
        store.enqueue_score(key, ServiceKind.AGS, Score(1.0, 1.0), now, now)
    assert len(store.claim_due(now, 0, "w0", 60.0)) == 0
    claims: dict[str, list[OutboxEntry]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> Callable[[], None]:
        def claim() -> None:
            barrier.wait()
            claims[name] = store.claim_due(now, 5, name, 60.0)

        return _in_thread(sut, claim)

    threads = [threading.Thread(target=worker(f"w{n}")) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [(e.key, name) for name, entries in claims.items() for e in entries]
    assert all(len(entries) <= 5 for entries in claims.values())
    assert len({key for key, _ in claimed}) == len(claimed)  # never one row for two workers
    in_flight = {e.key: e.claimed_by for e in store.list_outbox(OutboxState.IN_FLIGHT)}
    assert in_flight == dict(claimed)
    # What no worker won is still there for the next one.
    rest = store.claim_due(now, 20, "late", 60.0)
    assert {e.key for e in rest} | set(in_flight) == set(keys)
    assert store.outbox_counts()[OutboxState.IN_FLIGHT] == 12


def test_find_launch_contexts_by_content(sut: StoreUnderTest) -> None:
    store = sut.store
    alice, mallory = sut.make_user("alice"), sut.make_user("mallory")
    block = "block-v1:Org+Course+Run+type@lti_publish+block@" + "é" * 40
    contexts = [
        context(alice, resource_link_id="5", content_id=block, resource_link_title="Quiz 1", updated_at=100.0),
        context(alice, resource_link_id="6", content_id="other", updated_at=200.0),
        context(mallory, platform_user_id="3", content_id=block, updated_at=300.0),
        context(mallory, platform_user_id="3", resource_link_id="7", content_id=block.upper(), updated_at=400.0),
    ]
    for saved in contexts:
        store.save_launch_context(saved)
    assert store.find_launch_contexts(content_id=block) == [contexts[2], contexts[0]]  # exact, newest first
    assert store.find_launch_contexts(alice, content_id=block) == [contexts[0]]
    assert store.find_launch_contexts(alice, content_id="other") == [contexts[1]]
    assert store.find_launch_contexts(content_id="nothing") == []
    assert store.get_launch_context(contexts[0].platform, "2", "5") == contexts[0]  # the title comes back
    with pytest.raises(ValueError):
        store.find_launch_contexts()


# -- account linking: unlinking, migrated consumers, the prompt's pending launches --------------------


def test_a_link_can_be_removed_and_then_made_anew(sut: StoreUnderTest) -> None:
    store = sut.store
    alice, mallory = sut.make_user("alice"), sut.make_user("mallory")
    store.save_user_link(UserLink("https://moodle.example", "2", alice))
    assert store.get_user_link("https://moodle.example", "2") is not None  # cached now
    assert store.delete_user_link("https://moodle.example", "2") is True
    assert store.delete_user_link("https://moodle.example", "2") is False
    assert store.get_user_link("https://moodle.example", "2") is None  # not served from the cache
    assert store.save_user_link(UserLink("https://moodle.example", "2", mallory)).local_user_id == mallory
    assert store.delete_user_link("https://MOODLE.example", "2") is False  # exact


def test_a_consumer_keeps_the_issuer_it_moved_to(sut: StoreUnderTest) -> None:
    store = sut.store
    store.save_consumer(Consumer("key", "secret", "Moodle", migrated_to="https://moodle.example"))
    assert store.get_consumer("key") == Consumer("key", "secret", "Moodle", True, "https://moodle.example")
    store.save_consumer(Consumer("key", "secret", "Moodle"))
    assert store.get_consumer("key").migrated_to == ""


def pending_launch(pending_id: str = "p-1", **changes: Any) -> Any:
    from lti_core.prompt import PendingLaunch, PromptState
    from lti_core.types import Launch, Role

    launch = Launch(
        "1.3.0",
        "https://moodle.example",
        "2",
        ("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",),
        Role.STAFF,
        "5",
        given_name="Zoë",
        custom={"content_id": "c1"},
        raw={"iss": "https://moodle.example", "sub": "2"},
    )
    values: dict[str, Any] = {
        "id": pending_id,
        "launch": launch,
        "content_id": "block-v1:Org+C+R+type@lti_publish+block@x",
        "state": PromptState.CHOOSING,
        "may_create": True,
        "binding": "b" * 64,
        "handover": "h" * 64,
        "form_token_digest": "f" * 64,
        "expires_at": time.time() + 600,
        "suggested_username": "zoe_0123456789",
    }
    values.update(changes)
    return PendingLaunch(**values)


def test_pending_launches_are_single_use_and_expire(sut: StoreUnderTest) -> None:
    from lti_core.prompt import PromptState

    store, now = sut.store, time.time()
    first = pending_launch()
    store.save_pending_launch(first)
    assert store.get_pending_launch("p-1", now) == first
    assert store.get_pending_launch("P-1", now) is None  # exact
    signing_in = dataclasses.replace(first, state=PromptState.SIGNING_IN)
    assert store.replace_pending_launch(first, signing_in) is True
    assert store.replace_pending_launch(first, signing_in) is False  # a replay of the same step loses
    alice = sut.make_user("alice")
    confirming = dataclasses.replace(signing_in, state=PromptState.CONFIRMING, local_user_id=alice)
    assert store.replace_pending_launch(signing_in, confirming) is True
    assert store.get_pending_launch("p-1", now) == confirming
    rebound = dataclasses.replace(confirming, binding="c" * 64, handover="")
    assert store.replace_pending_launch(confirming, rebound) is True
    assert store.replace_pending_launch(confirming, rebound) is False
    assert store.delete_pending_launch("p-1") is True
    assert store.delete_pending_launch("p-1") is False  # single use: one deleter wins
    store.save_pending_launch(pending_launch("p-2", expires_at=now - 1))
    assert store.get_pending_launch("p-2", now) is None
    assert store.purge_expired(now) >= 1
    assert store.delete_pending_launch("p-2") is False
