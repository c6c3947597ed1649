"""Emulator security through the real client: 401, 403 texts, API keys, run-as, has_privileges."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
)

from bot.emulator import Emulator, demo_state
from bot.emulator.testing import ThreadedEmulator

STOP = "cluster:admin/xpack/ml/trained_models/deployment/stop"
GRANTED_BY = (
    "this action is granted by the cluster privileges [manage_inference,manage_ml,manage,all]"
)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedEmulator]:
    emulator = Emulator(demo_state(), auth=("elastic", "changeme"))
    emulator.state.add_role("inference-only", cluster=["manage_inference"])
    emulator.state.add_user("inference-user", "inference-pw", ["inference-only"])
    emulator.state.add_user("ghost-roles", "ghost-pw", ["ml-viewer", "no-such-role"])
    with ThreadedEmulator(emulator) as running:
        yield running


def client(server: ThreadedEmulator, user: str, password: str) -> Elasticsearch:
    return Elasticsearch(server.url, basic_auth=(user, password))


def reason(exc: ApiError) -> str:
    return str(exc.body["error"]["root_cause"][0]["reason"])


def test_missing_credentials_401(server: ThreadedEmulator) -> None:
    with pytest.raises(AuthenticationException) as caught:
        Elasticsearch(server.url).ml.get_trained_models_stats()
    error = caught.value.body["error"]
    assert error["type"] == "security_exception"
    assert error["reason"] == (
        "missing authentication credentials for REST request [/_ml/trained_models/_stats]"
    )
    assert error["header"]["WWW-Authenticate"][0] == 'Basic realm="security", charset="UTF-8"'
    assert caught.value.meta.headers["www-authenticate"].startswith('Basic realm="security"')


def test_wrong_password_401(server: ThreadedEmulator) -> None:
    with pytest.raises(AuthenticationException) as caught:
        client(server, "elastic", "wrong").info()
    assert reason(caught.value) == "unable to authenticate user [elastic] for REST request [/]"


def test_viewer_cannot_stop(server: ThreadedEmulator) -> None:
    with pytest.raises(AuthorizationException) as caught:
        client(server, "viewer", "viewer-password").ml.stop_trained_model_deployment(
            model_id="ner-prod"
        )
    assert caught.value.body["error"]["type"] == "security_exception"
    assert reason(caught.value) == (
        f"action [{STOP}] is unauthorized for user [viewer] with effective roles [ml-viewer], "
        f"{GRANTED_BY}"
    )
    assert "ner-prod" in server.emulator.state.deployments


def test_missing_roles_are_named(server: ThreadedEmulator) -> None:
    with pytest.raises(AuthorizationException) as caught:
        client(server, "ghost-roles", "ghost-pw").ml.stop_trained_model_deployment(
            model_id="ner-prod"
        )
    assert reason(caught.value) == (
        f"action [{STOP}] is unauthorized for user [ghost-roles] with effective roles "
        f"[ml-viewer] (assigned roles [no-such-role] were not found), {GRANTED_BY}"
    )


def test_viewer_can_read_stats_but_not_pipelines(server: ThreadedEmulator) -> None:
    viewer = client(server, "viewer", "viewer-password")
    assert viewer.ml.get_trained_models_stats()["count"] == 6
    with pytest.raises(AuthorizationException) as caught:
        viewer.ingest.get_pipeline(id="elser-ingest")
    assert reason(caught.value).endswith(
        "this action is granted by the cluster privileges "
        "[read_pipeline,manage_ingest_pipelines,manage_pipeline,manage,all]"
    )


def test_has_privileges_names_and_actions(server: ThreadedEmulator) -> None:
    bot = client(server, "ml-bot", "ml-bot-password")
    resp = bot.security.has_privileges(cluster=["manage_ml", "monitor_ml", "manage_security", STOP])
    assert resp["username"] == "ml-bot"
    assert resp["cluster"] == {
        "manage_ml": True,
        "monitor_ml": True,
        "manage_security": False,
        STOP: True,
    }
    assert resp["has_all_requested"] is False
    assert resp["index"] == {} and resp["application"] == {}


def test_has_privileges_action_name_is_a_pattern(server: ThreadedEmulator) -> None:
    # The action name becomes `<action>*`; manage_inference only lists the exact action.
    user = client(server, "inference-user", "inference-pw")
    assert user.security.has_privileges(cluster=[STOP])["cluster"] == {STOP: False}
    assert user.ml.stop_trained_model_deployment(model_id="sentiment-batch") == {"stopped": True}


def test_has_privileges_unknown_name(server: ThreadedEmulator) -> None:
    with pytest.raises(BadRequestError) as caught:
        client(server, "viewer", "viewer-password").security.has_privileges(cluster=["manage_mll"])
    assert caught.value.body["error"]["type"] == "illegal_argument_exception"
    text = reason(caught.value)
    assert text.startswith(
        "unknown cluster privilege [manage_mll]. a privilege must be either "
        "one of the predefined cluster privilege names ["
    )
    assert text.endswith("] or a pattern over one of the available cluster actions")
    assert ",manage_ml," in text


def test_api_key_with_role_descriptors(server: ThreadedEmulator) -> None:
    admin = client(server, "elastic", "changeme")
    key = admin.security.create_api_key(
        name="read-only", role_descriptors={"ro": {"cluster": ["monitor_ml"]}}
    )
    assert set(key) >= {"id", "name", "api_key", "encoded"}
    limited = Elasticsearch(server.url, api_key=key["encoded"])
    assert limited.ml.get_trained_models_stats()["count"] == 6
    with pytest.raises(AuthorizationException) as caught:
        limited.ml.stop_trained_model_deployment(model_id="ner-prod")
    assert reason(caught.value) == (
        f"action [{STOP}] is unauthorized for API key id [{key['id']}] of user [elastic], "
        f"{GRANTED_BY}"
    )
    auth = limited.security.authenticate()
    assert auth["authentication_type"] == "api_key"
    assert auth["api_key"]["id"] == key["id"]


def test_api_key_inherits_owner_privileges(server: ThreadedEmulator) -> None:
    admin = client(server, "elastic", "changeme")
    key = admin.security.create_api_key(name="full")
    full = Elasticsearch(server.url, api_key=(key["id"], key["api_key"]))
    assert full.security.has_privileges(cluster=["all"])["has_all_requested"] is True
    with pytest.raises(AuthenticationException):
        Elasticsearch(server.url, api_key=(key["id"], "wrong")).info()


def test_run_as(server: ThreadedEmulator) -> None:
    admin = client(server, "elastic", "changeme")
    as_viewer = admin.options(headers={"es-security-runas-user": "viewer"})
    assert as_viewer.security.authenticate()["username"] == "viewer"
    with pytest.raises(AuthorizationException) as caught:
        as_viewer.ml.stop_trained_model_deployment(model_id="ner-prod")
    assert reason(caught.value).startswith(
        f"action [{STOP}] is unauthorized for user [elastic] run as [viewer] with effective "
        "roles [ml-viewer], "
    )
    bot = client(server, "ml-bot", "ml-bot-password").options(
        headers={"es-security-runas-user": "viewer"}
    )
    with pytest.raises(AuthorizationException) as caught:
        bot.ml.get_trained_models_stats()
    assert reason(caught.value) == (
        "action [cluster:monitor/xpack/ml/inference/stats/get] is unauthorized for user [ml-bot] "
        "with effective roles [ml-operator], because user [ml-bot] is unauthorized to run as "
        "[viewer]"
    )
    log = server.emulator.requests[-1]
    assert log.headers["es-security-runas-user"] == "viewer"
    assert (log.principal, log.authenticated, log.status) == ("viewer", "ml-bot", 403)


def test_roles_and_users_via_api(server: ThreadedEmulator) -> None:
    admin = client(server, "elastic", "changeme")
    assert admin.security.put_role(name="stopper", cluster=["manage_ml"])["role"]["created"]
    assert admin.security.put_user(username="oncall", password="oncall-pw", roles=["stopper"])[
        "created"
    ]
    oncall = client(server, "oncall", "oncall-pw")
    assert oncall.security.has_privileges(cluster=[STOP])["cluster"][STOP] is True
    with pytest.raises(BadRequestError):
        admin.security.put_role(name="bad", cluster=["manage_everything"])


def test_security_apis_when_security_is_off() -> None:
    with ThreadedEmulator(Emulator(demo_state())) as running:
        es = Elasticsearch(running.url)
        assert es.ml.stop_trained_model_deployment(model_id="nothing") == {"stopped": True}
        with pytest.raises(ApiError) as caught:
            es.security.has_privileges(cluster=["manage_ml"])
        assert caught.value.status_code == 500
        assert reason(caught.value).startswith("Security must be explicitly enabled")
