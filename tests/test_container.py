"""The Dockerfile, built and run with podman as docs/containers.md describes.

The image is built on a local Debian base made with debootstrap (no registry is reachable),
then run with `--network host` against the emulator and the Slack stand-in served by this
test process on 127.0.0.1; a second run keeps its state in a redis-server started on the
host. Run with `pytest -m container` (the default run deselects it).
Without podman, runc or debootstrap the tests skip, unless CI is set: then they fail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROLE_MAP, button_value, text_of
from support.botproc import free_port, http_get
from support.driver import SlackDriver
from support.loop import BackgroundLoop
from support.redis_server import redis_server, redis_url
from support.slack_standin import SlackStandIn

from bot.adapters.store_redis import RedisStore
from bot.emulator import Emulator, demo_state

pytestmark = pytest.mark.container
__all__ = ["redis_server", "redis_url"]  # fixtures

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/debian-python:bookworm"
IMAGE = "localhost/ml-chatops:test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
"""
ADMIN, CHANNEL = "U0ADMIN1", "C0INCIDENTS"


def _missing_tooling() -> str | None:
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install -y podman runc debootstrap)"
    if os.geteuid() != 0:
        return "debootstrap and this podman set-up need root"
    return None


@dataclass
class Podman:
    """podman with the containers.conf this machine needs (cgroupfs, no default ulimits)."""

    env: dict[str, str]
    build_log: str = ""

    def run(
        self, args: Sequence[str], *, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS`; fail the test with its output if `check` and it fails."""
        done = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(f"podman {' '.join(args)} -> {done.returncode}\n{done.stderr[-4000:]}")
        return done


def _ensure_base_image(podman: Podman, work: Path) -> None:
    """Make the local base image once (about 40 s); later runs reuse it."""
    if podman.run(["image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return
    rootfs = work / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    archive = work / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:  # `tar -C ROOTFS -c .`
        tar.add(rootfs, arcname=".")
    podman.run(["import", str(archive), BASE_IMAGE], timeout=600)
    shutil.rmtree(rootfs, ignore_errors=True)
    archive.unlink()


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman ready to use, the base image present and the Dockerfile built as IMAGE."""
    missing = _missing_tooling()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the container tests must run: {missing}")
        pytest.skip(missing)
    work = tmp_path_factory.mktemp("podman")
    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    tool = Podman({**os.environ, "CONTAINERS_CONF": str(conf)})
    _ensure_base_image(tool, work)
    started = time.monotonic()
    built = tool.run(
        [
            "build",
            "--runtime",
            "runc",
            "--network",
            "host",
            # Docker format keeps HEALTHCHECK (the OCI image format has no field for it).
            "--format",
            "docker",
            "-v",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "--build-arg",
            f"PIP_CERT={CA_BUNDLE}",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-t",
            IMAGE,
            str(REPO),
        ],
        timeout=900,
    )
    tool.build_log = built.stdout + built.stderr
    size = int(tool.run(["image", "inspect", IMAGE, "--format", "{{.Size}}"]).stdout)
    print(f"built {IMAGE} in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")
    return tool


def test_the_image_is_non_root_with_healthcheck_entrypoint_and_cmd(podman: Podman) -> None:
    image = json.loads(podman.run(["image", "inspect", IMAGE]).stdout)[0]
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["ml-chatops"]
    assert config["Cmd"] == ["serve"]
    assert "/healthz" in " ".join(image["Healthcheck"]["Test"])
    assert not any(e.startswith("PIP_CERT=") for e in config.get("Env", []))  # build-only
    # One-off commands: no health check to schedule, so no systemd warning from podman.
    one_off = ["run", "--rm", "--runtime", "runc", "--no-healthcheck", IMAGE]
    helped = podman.run([*one_off, "--help"])
    assert "check-config" in helped.stdout
    assert "systemd" not in helped.stderr, helped.stderr


def test_the_user_and_its_group_are_named_and_built_without_warnings(podman: Podman) -> None:
    assert "useradd warning" not in podman.build_log, podman.build_log[-2000:]
    ids = ["run", "--rm", "--runtime", "runc", "--no-healthcheck"]
    ids += ["--entrypoint", "id", IMAGE]
    assert podman.run([*ids, "-u"]).stdout.strip() == "10001"
    assert podman.run([*ids, "-g"]).stdout.strip() == "10001"  # not a system group's 999
    assert podman.run([*ids, "-gn"]).stdout.strip() == "mlchatops"  # a group with a name
    assert podman.run([*ids, "-un"]).stdout.strip() == "mlchatops"


@dataclass
class Running:
    """The bot running in a container, and what it talks to."""

    url: str
    name: str
    slack: SlackStandIn
    emulator: Emulator
    signing_secret: str


@contextmanager
def _container(
    podman: Podman,
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    signing_secret: str,
    tmp_path: Path,
    **extra_env: str,
) -> Iterator[Running]:
    """Run the image (host network) against an emulator and the Slack stand-in."""
    emulator = Emulator(demo_state())
    es_url = bg_loop.run(emulator.start())
    slack.bot_token = "xoxb-" + secrets.token_hex(12)
    config = tmp_path / "config.yml"
    config.write_text(ROLE_MAP)
    config.chmod(0o644)
    port = free_port()
    name = f"ml-chatops-test-{secrets.token_hex(4)}"
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack.api_url,
        "ELASTICSEARCH_URL": es_url,
        "ML_CHATOPS_CONFIG": "/etc/ml-chatops/config.yml",
        "PORT": str(port),
        **extra_env,
    }
    podman.run(
        [
            "run",
            "--detach",
            "--name",
            name,
            "--runtime",
            "runc",
            "--network",
            "host",
            "--health-interval",
            "disable",  # no systemd timer here; the test runs the check itself
            "-v",
            f"{config}:/etc/ml-chatops/config.yml:ro",
            *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
            IMAGE,
        ]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(podman, name, url)
        yield Running(url, name, slack, emulator, signing_secret)
    finally:
        podman.run(["rm", "--force", "--volumes", name], check=False)
        bg_loop.run(emulator.stop())


@pytest.fixture
def running(
    podman: Podman,
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    signing_secret: str,
    tmp_path: Path,
) -> Iterator[Running]:
    """The image as built: SQLite state in its volume."""
    with _container(podman, bg_loop, slack, signing_secret, tmp_path) as bot:
        yield bot


@pytest.fixture
def running_on_redis(
    podman: Podman,
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    signing_secret: str,
    tmp_path: Path,
    redis_url: str,
) -> Iterator[tuple[Running, str]]:
    """The image with ML_CHATOPS_STATE on a redis-server on the host (host network)."""
    env = {"ML_CHATOPS_STATE": redis_url}
    with _container(podman, bg_loop, slack, signing_secret, tmp_path, **env) as bot:
        yield bot, redis_url


def _wait_healthy(podman: Podman, name: str, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_get(url + "/healthz", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    logs = podman.run(["logs", name], check=False)
    pytest.fail(f"container not healthy within {timeout}s:\n{logs.stdout}\n{logs.stderr}")


def _stop_through(running: Running) -> str:
    """/ml-stop ner-prod, click Stop, wait for the channel result; returns the action id."""
    driver = SlackDriver(running.url, running.signing_secret, running.slack)
    reply = driver.command("/ml-stop", "ner-prod", user_id=ADMIN, channel_id=CHANNEL)
    assert reply.status == 200, reply.body_text
    url = driver.last_response_url
    posts = running.slack.wait_for(lambda: running.slack.response_posts(url) or None, 10)
    assert "ml_stop.confirm" in text_of(posts[0].body or {})
    action_id = button_value(posts[0].body or {})
    assert driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL).status == 200
    result = running.slack.wait_for(
        lambda: [m for m in running.slack.messages(CHANNEL) if "stopped" in text_of(m)], 15
    )
    assert "ner-prod" in text_of(result[0])
    assert len(running.emulator.stop_calls("ner-prod")) == 1
    return action_id


def test_the_container_serves_probes_and_a_full_stop(podman: Podman, running: Running) -> None:
    assert http_get(running.url + "/healthz").json() == {"status": "ok"}
    ready = http_get(running.url + "/readyz")
    assert ready.status == 200, ready.body
    checks = {"cluster:default": "ok 9.1.0", "slack": "ok", "audit": "ok"}
    assert ready.json()["checks"] == checks
    assert podman.run(["healthcheck", "run", running.name], check=False).returncode == 0
    assert podman.run(["exec", running.name, "id", "-u"]).stdout.strip() == "10001"

    _stop_through(running)

    metrics = http_get(running.url + "/metrics").body
    assert 'ml_chatops_stops_total{cluster="default",outcome="success"} 1.0' in metrics

    podman.run(["stop", "--time", "30", running.name], timeout=60)
    state = json.loads(podman.run(["inspect", running.name]).stdout)[0]["State"]
    assert state["ExitCode"] == 0  # SIGTERM: drained and exited cleanly
    logs = podman.run(["logs", running.name])
    output = logs.stdout + logs.stderr
    assert '"message": "stopped"' in output
    for secret in (running.slack.bot_token, running.signing_secret):
        assert secret not in output


def test_the_container_keeps_its_state_in_redis(
    podman: Podman, bg_loop: BackgroundLoop, running_on_redis: tuple[Running, str]
) -> None:
    """The image has the redis client: ML_CHATOPS_STATE=redis://… works as documented."""
    running, redis_url = running_on_redis
    assert http_get(running.url + "/readyz").status == 200
    action_id = _stop_through(running)

    # The action lives in Redis, final, and the container wrote no SQLite file.
    store = RedisStore.from_url(redis_url)
    try:
        action = bg_loop.run(store.get(action_id))
    finally:
        bg_loop.run(store.close())
    assert action is not None and action.state.is_final, action
    listing = podman.run(["exec", running.name, "ls", "-A", "/app/state"]).stdout
    assert listing.strip() == ""

    podman.run(["stop", "--time", "30", running.name], timeout=60)
    state = json.loads(podman.run(["inspect", running.name]).stdout)[0]["State"]
    assert state["ExitCode"] == 0
    logs = podman.run(["logs", running.name])
    assert "No module named" not in logs.stdout + logs.stderr
