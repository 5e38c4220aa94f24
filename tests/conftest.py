"""Shared fixtures; the classes and helpers they use live in ``harness``."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

import services
from harness import (  # noqa: F401 - re-exported for fixtures and older imports
    ARTIFACTS,
    HAPPYHORSE,
    Cluster,
    DistributedServer,
    ImageServer,
    LiveServer,
    WorkerProcess,
    _spawn,
    _wait_healthy,
    base_env,
    free_port,
    png_bytes,
    wait_for_task,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub


def _server_starter(tmp_path_factory: pytest.TempPathFactory, started: list[LiveServer]) -> Callable[..., LiveServer]:
    def start(**env_overrides: str) -> LiveServer:
        data_dir = tmp_path_factory.mktemp("hh-data")
        port = free_port()
        env = base_env(data_dir, **env_overrides)
        log_path = data_dir / "server.log"
        server = LiveServer(f"http://127.0.0.1:{port}", data_dir, env, _spawn(env, port, log_path), log_path, port)
        started.append(server)
        _wait_healthy(server)
        return server

    return start


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with extra ``HAPPYHORSE_*`` settings: ``server_factory(HAPPYHORSE_ENGINE="diffusers")``."""
    started: list[LiveServer] = []
    yield _server_starter(tmp_path_factory, started)
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """``server_factory`` whose servers live until the module's last test."""
    started: list[LiveServer] = []
    yield _server_starter(tmp_path_factory, started)
    for server in started:
        server.stop()


@pytest.fixture
def live_server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A fresh embedded-mode server with the synthetic engine and its own data dir."""
    return server_factory()


@pytest.fixture(params=["embedded", "distributed"])
def api_server(request: pytest.FixtureRequest) -> LiveServer:
    """The API under test, once per deployment mode: the embedded server, and a distributed cluster
    (own PostgreSQL database, one API process, one ``happyhorse worker``, S3 results on SeaweedFS,
    Redis rate limits) behind the same LiveServer interface (``.mode`` tells them apart)."""
    if request.param == "embedded":
        return request.getfixturevalue("live_server")  # type: ignore[no-any-return]
    return request.getfixturevalue("cluster_factory")().apis[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def shared_api_server(request: pytest.FixtureRequest) -> LiveServer:
    """``api_server`` shared by every test of a module, once per deployment: for tests that make their
    own keys and need no settings of their own (a cluster costs seconds to start; most tests need
    seconds less than that). A module opts in by defining ``api_server`` as this fixture."""
    if request.param == "embedded":
        return request.getfixturevalue("module_server_factory")()  # type: ignore[no-any-return]
    return request.getfixturevalue("module_cluster_factory")().apis[0]  # type: ignore[no-any-return]


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.SeaweedS3]:
    """One SeaweedFS S3 server for the session (tests keep apart by key prefix)."""
    server = services.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database name that ``happyhorse db upgrade`` has migrated, for tests to copy: a copy is a
    file copy inside PostgreSQL, much cheaper than migrating each test's database."""
    with services.fresh_database() as url:
        env = base_env(tmp_path_factory.mktemp("hh-template"), HAPPYHORSE_DATABASE_URL=url)
        subprocess.run([*HAPPYHORSE, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
        yield url.rsplit("/", 1)[1]


def _cluster_starter(
    stack: contextlib.ExitStack,
    tmp_path_factory: pytest.TempPathFactory,
    seaweedfs: services.SeaweedS3,
    migrated_template: str,
) -> Callable[..., Cluster]:
    def start(apis: int = 1, workers: int = 1, **overrides: str) -> Cluster:
        database_url = stack.enter_context(services.fresh_database(template=migrated_template))
        redis_uri = stack.enter_context(services.redis_prefix())
        root = tmp_path_factory.mktemp("hh-cluster")
        env = base_env(
            root,
            **{
                "HAPPYHORSE_DATABASE_URL": database_url,
                "HAPPYHORSE_STORAGE_URL": seaweedfs.storage_url(root.name),
                "HAPPYHORSE_RATE_LIMIT_STORAGE": redis_uri,
                "HAPPYHORSE_SECRET_KEY": "cluster-test-secret",  # one signing key on every node
                "HAPPYHORSE_STALL_TIMEOUT": "20",
                "HAPPYHORSE_SWEEP_INTERVAL": "1",
                **seaweedfs.credentials_env(),
                **overrides,
            },
        )
        cluster = Cluster(database_url, seaweedfs, root.name, env, root)
        stack.callback(cluster.stop)  # LIFO: stops before its database is dropped
        for _ in range(workers):
            cluster.add_worker(wait=False)
        for _ in range(apis):
            cluster.add_api()
        cluster.wait_for_workers()
        return cluster

    return start


@pytest.fixture
def cluster_factory(
    tmp_path_factory: pytest.TempPathFactory, seaweedfs: services.SeaweedS3, migrated_template: str
) -> Iterator[Callable[..., Cluster]]:
    """``cluster_factory(apis=1, workers=1, **HAPPYHORSE_overrides)``: a distributed deployment on its
    own database (a copy of the migrated template); stopped, and the database dropped, afterwards."""
    with contextlib.ExitStack() as stack:
        yield _cluster_starter(stack, tmp_path_factory, seaweedfs, migrated_template)


@pytest.fixture(scope="module")
def module_cluster_factory(
    tmp_path_factory: pytest.TempPathFactory, seaweedfs: services.SeaweedS3, migrated_template: str
) -> Iterator[Callable[..., Cluster]]:
    """``cluster_factory`` whose clusters live until the module's last test."""
    with contextlib.ExitStack() as stack:
        yield _cluster_starter(stack, tmp_path_factory, seaweedfs, migrated_template)
