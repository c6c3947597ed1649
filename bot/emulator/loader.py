"""Load and dump cluster state as YAML or JSON (the `--data FILE` format).

Top-level keys, all optional::

    cluster_name: prod-eu            # also cluster_uuid, node_name
    models:                          # list; definition_length null = no definition uploaded
      - {model_id: my-ner, description: NER, model_type: pytorch,
         inference_config: {ner: {}}, tags: [], definition_length: 1630}
    deployments:                     # list; any Deployment field (inference_count, priority,
      - {model_id: my-ner, deployment_id: ner-prod, number_of_allocations: 2,
         cache_size: 10mb, adaptive_allocations: {enabled: true}, inference_count: 12}
    aliases: {ner-current: my-ner}   # alias: model_id
    pipelines: {ner-pipe: {processors: [{inference: {model_id: ner-prod}}]}}
    roles: {ml-ops: {cluster: [manage_ml], run_as: [viewer], indices: []}}
    users: {ml-bot: {password: secret123, roles: [ml-ops]}}
    api_keys:                        # id/api_key optional (random); role_descriptors optional
      - {owner: ml-bot, name: bot-key, id: k1, api_key: s3cr3t,
         role_descriptors: {ro: {cluster: [monitor_ml]}}}
    inference_endpoints:             # without deployment_id the endpoint owns a deployment
      - {inference_id: my-elser, task_type: sparse_embedding, model_id: my-ner,
         num_allocations: 1, num_threads: 1}   # started unless `deployments` has it
      - {inference_id: on-ner, task_type: text_embedding, model_id: my-ner,
         deployment_id: ner-prod}
    indices:                         # created in the document store at startup
      docs: {mappings: {properties: {body: {type: semantic_text, inference_id: my-elser}}}}
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import yaml

from bot.emulator.state import ApiKey, ClusterState, Deployment, InferenceEndpoint, Role, User

JSON = dict[str, Any]
_DEPLOYMENT_FIELDS = set(Deployment.__dataclass_fields__) - {"deployment_id", "model_id"}


def load_state(path: str | pathlib.Path) -> ClusterState:
    """Read a state file; `.json` is JSON, anything else YAML (a superset of JSON)."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    return state_from_dict(data or {})


def _role(name: str, data: JSON) -> Role:
    return Role(
        name,
        cluster=list(data.get("cluster") or []),
        indices=list(data.get("indices") or []),
        run_as=list(data.get("run_as") or []),
        metadata=dict(data.get("metadata") or {}),
    )


def state_from_dict(data: JSON) -> ClusterState:
    """Build a ClusterState from the documented dictionary format."""
    state = ClusterState()
    for key in ("cluster_name", "cluster_uuid", "node_name"):
        if key in data:
            setattr(state, key, str(data[key]))
    for m in data.get("models") or []:
        model = state.add_model(
            m["model_id"],
            description=m.get("description"),
            model_type=m.get("model_type", "pytorch"),
            inference_config=m.get("inference_config"),
            tags=m.get("tags"),
            definition_length=m.get("definition_length", 1630),
            vocabulary=m.get("vocabulary"),
            metadata=m.get("metadata"),
            created_by=m.get("created_by", "api_user"),
        )
        if "input" in m:
            model.input = m["input"]
    for d in data.get("deployments") or []:
        dep = state.start_deployment(
            d["model_id"],
            d.get("deployment_id"),
            number_of_allocations=d.get("number_of_allocations", 1),
            threads_per_allocation=d.get("threads_per_allocation", 1),
            priority=d.get("priority", "normal"),
            queue_capacity=d.get("queue_capacity", 1024),
            cache_size=d.get("cache_size"),
            adaptive_allocations=d.get("adaptive_allocations"),
            inference_count=d.get("inference_count", 0),
        )
        for key, value in d.items():
            if key in _DEPLOYMENT_FIELDS:
                setattr(dep, key, value)
    for alias, model_id in (data.get("aliases") or {}).items():
        state.put_alias(model_id, alias)
    for pid, body in (data.get("pipelines") or {}).items():
        state.put_pipeline(pid, body)
    for name, r in (data.get("roles") or {}).items():
        state.roles[name] = _role(name, r or {})
    for name, u in (data.get("users") or {}).items():
        state.users[name] = User(
            name,
            str(u["password"]),
            roles=list(u.get("roles") or []),
            full_name=u.get("full_name"),
            email=u.get("email"),
            enabled=bool(u.get("enabled", True)),
            metadata=dict(u.get("metadata") or {}),
        )
    for entry in data.get("api_keys") or []:
        k: JSON = entry
        descriptors = {n: _role(n, r or {}) for n, r in (k.get("role_descriptors") or {}).items()}
        api_key = state.create_api_key(
            k["owner"],
            k["name"],
            descriptors,
            id=k.get("id"),
            api_key=k.get("api_key"),
            expiration=k.get("expiration"),
        )
        api_key.invalidated = bool(k.get("invalidated", False))
    for e in data.get("inference_endpoints") or []:
        _load_endpoint(state, e)
    for name, spec in (data.get("indices") or {}).items():
        state.add_index(name, (spec or {}).get("mappings"), (spec or {}).get("settings"))
    return state


def _load_endpoint(state: ClusterState, e: JSON) -> None:
    """An endpoint; one that owns its deployment starts it unless `deployments` listed it."""
    owns = e.get("deployment_id") in (None, e["inference_id"]) and not e.get("uses_deployment")
    if owns and e["inference_id"] not in state.deployments:
        state.add_inference_endpoint(
            e["inference_id"],
            e["task_type"],
            e["model_id"],
            num_allocations=e.get("num_allocations", 1),
            num_threads=e.get("num_threads", 1),
            adaptive_allocations=e.get("adaptive_allocations"),
            chunking_settings=e.get("chunking_settings"),
        )
        return
    state.inference_endpoints[e["inference_id"]] = InferenceEndpoint(
        e["inference_id"],
        e["task_type"],
        e["model_id"],
        service=e.get("service", "elasticsearch"),
        deployment_id=e.get("deployment_id") or e["inference_id"],
        created_deployment=owns,
        num_allocations=e.get("num_allocations", 1),
        num_threads=e.get("num_threads", 1),
        adaptive_allocations=e.get("adaptive_allocations"),
        chunking_settings=e.get("chunking_settings"),
    )


def _endpoint_json(e: InferenceEndpoint) -> JSON:
    return {
        "inference_id": e.inference_id,
        "task_type": e.task_type,
        "model_id": e.model_id,
        "service": e.service,
        "deployment_id": e.deployment_id,
        "uses_deployment": not e.created_deployment,
        "num_allocations": e.num_allocations,
        "num_threads": e.num_threads,
        "adaptive_allocations": e.adaptive_allocations,
        "chunking_settings": e.chunking_settings,
    }


def _role_json(role: Role) -> JSON:
    return {
        "cluster": role.cluster,
        "indices": role.indices,
        "run_as": role.run_as,
        "metadata": role.metadata,
    }


def _api_key_json(key: ApiKey) -> JSON:
    return {
        "id": key.id,
        "name": key.name,
        "api_key": key.api_key,
        "owner": key.owner,
        "role_descriptors": {n: _role_json(r) for n, r in key.role_descriptors.items()},
        "expiration": key.expiration,
        "invalidated": key.invalidated,
    }


def dump_state(state: ClusterState) -> JSON:
    """The inverse of state_from_dict (runtime-only fields included as plain values)."""
    return {
        "cluster_name": state.cluster_name,
        "cluster_uuid": state.cluster_uuid,
        "node_name": state.node_name,
        "models": [
            {
                "model_id": m.model_id,
                "model_type": m.model_type,
                "description": m.description,
                "tags": m.tags,
                "inference_config": m.inference_config,
                "input": m.input,
                "metadata": m.metadata,
                "created_by": m.created_by,
                "definition_length": m.total_definition_length
                if m.definition_status == "complete"
                else None,
                "vocabulary": m.vocabulary,
            }
            for m in state.models.values()
        ],
        "deployments": [dict(d.__dict__) for d in state.deployments.values()],
        "aliases": dict(state.aliases),
        "pipelines": dict(state.pipelines),
        "roles": {n: _role_json(r) for n, r in state.roles.items()},
        "users": {
            n: {
                "password": u.password,
                "roles": u.roles,
                "full_name": u.full_name,
                "email": u.email,
                "enabled": u.enabled,
                "metadata": u.metadata,
            }
            for n, u in state.users.items()
        },
        "api_keys": [_api_key_json(k) for k in state.api_keys.values()],
        "inference_endpoints": [_endpoint_json(e) for e in state.inference_endpoints.values()],
        "indices": dict(state.indices),
    }
