"""Elasticsearch gateway: resolve ids to deployments, find pipelines, stop; errors → domain errors.

One module per job: `client` (the client and how requests are sent), `errors` (exceptions →
`bot.core.errors`), `snapshot` (the pure parsing of one read), `reads` (the snapshot reads),
`gateway` (ClusterGateway) and `clusters` (Clusters). The names below are re-exported for callers.
"""

from bot.adapters.elasticsearch.client import ClusterClient, build_client
from bot.adapters.elasticsearch.clusters import Clusters
from bot.adapters.elasticsearch.errors import ElasticError, to_domain_error
from bot.adapters.elasticsearch.gateway import ClusterGateway
from bot.adapters.elasticsearch.reads import SnapshotReads
from bot.adapters.elasticsearch.scaling import _matches
from bot.adapters.elasticsearch.snapshot import (
    ClusterSnapshot,
    deployment_from_stats,
    inference_model_ids,
    pipeline_references,
)
from bot.app.ports import CallContext, Verification

__all__ = [
    "CallContext",
    "ClusterClient",
    "ClusterGateway",
    "ClusterSnapshot",
    "Clusters",
    "ElasticError",
    "SnapshotReads",
    "Verification",
    "_matches",
    "build_client",
    "deployment_from_stats",
    "inference_model_ids",
    "pipeline_references",
    "to_domain_error",
]
