"""The answer schemas: what Elasticsearch documents parses; anything else is one clear error."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.elasticsearch import schemas
from bot.core.errors import ClusterBadAnswer, ClusterError

# The reference's illustrative `_stats` answer (serializer field order, YAML assertions).
DOCUMENTED_STATS: dict[str, Any] = {
    "count": 1,
    "trained_model_stats": [
        {
            "model_id": "test_model",
            "model_size_stats": {"model_size_bytes": 1630, "required_native_memory_bytes": 0},
            "pipeline_count": 0,
            "deployment_stats": {
                "deployment_id": "test_model",
                "model_id": "test_model",
                "threads_per_allocation": 1,
                "number_of_allocations": 1,
                "queue_capacity": 1024,
                "state": "started",
                "allocation_status": {
                    "allocation_count": 1,
                    "target_allocation_count": 1,
                    "state": "fully_allocated",
                },
                "cache_size": "1630b",
                "priority": "normal",
                "start_time": 1700000000000,
                "inference_count": 3,
                "peak_throughput_per_minute": 3,
                "nodes": [
                    {
                        "node": {"uckeG3R8TLe2MMNBQ6AGrw": {"name": "node-1", "roles": ["ml"]}},
                        "routing_state": {"routing_state": "started"},
                        "inference_count": 3,
                        "number_of_pending_requests": 0,
                    }
                ],
            },
        },
        {"model_id": "not_deployed", "pipeline_count": 0},
    ],
}


def parse(schema: type[schemas.M], body: Any, content_type: str = "") -> schemas.M:
    return schemas.parse(
        schema,
        body,
        cluster="prod",
        endpoint="ml.get_trained_models_stats",
        content_type=content_type,
    )


def test_the_documented_stats_answer_parses() -> None:
    page = parse(schemas.StatsPage, DOCUMENTED_STATS)
    deployed, idle = page.trained_model_stats
    assert deployed.deployment_stats is not None
    assert deployed.deployment_stats.deployment_id == "test_model"
    assert deployed.deployment_stats.nodes[0].number_of_pending_requests == 0
    assert idle.deployment_stats is None


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        ("<html>proxy</html>", "text/html; charset=utf-8", "a text/html page instead of JSON"),
        ([], "application/json", "a JSON list instead of an object"),
        (None, "", "an empty body"),
        (7, "", "a JSON number instead of an object"),
        ({"count": 1}, "", "`trained_model_stats` is missing"),
        (
            {"count": 1, "trained_model_stats": [{"model_id": "m", "deployment_stats": []}]},
            "",
            "`trained_model_stats.0.deployment_stats`: input should be",
        ),
        (
            {"count": 1, "trained_model_stats": [{"model_id": "m", "deployment_stats": {}}]},
            "",
            "`trained_model_stats.0.deployment_stats.deployment_id` is missing (and 1 more)",
        ),
        (
            {"count": 1, "trained_model_stats": [{"model_id": "m", "deployment_stats": None}]},
            "",
            "`trained_model_stats.0`: `deployment_stats` is null",
        ),
    ],
)
def test_a_wrong_shape_is_one_error_naming_cluster_and_api(
    body: Any, content_type: str, what: str
) -> None:
    with pytest.raises(ClusterBadAnswer) as caught:
        parse(schemas.StatsPage, body, content_type)
    message = caught.value.message
    assert message.startswith(
        "cluster `prod` answered `GET _ml/trained_models/_stats` in an unexpected shape: "
    )
    assert what in message
    assert isinstance(caught.value, ClusterError) and caught.value.kind == "bad_answer"


def test_every_read_endpoint_has_a_label() -> None:
    # The endpoint ids the adapter sends are the keys; a new read adds its label here.
    assert all(label.split(" ", 1)[0] in {"GET", "POST"} for label in schemas.APIS.values())
    error = schemas.bad_answer("prod", "ml.update_trained_model_deployment", "x")
    assert "`ml.update_trained_model_deployment`" in error.message  # unlabelled: its id
