"""Domain errors the use cases catch, each phrased for the person who asked.

Hierarchy (the Elasticsearch adapter maps elasticsearch-py and elastic_transport
exceptions onto it; `kind` names each class for logs, metrics and old callers):

* ClusterError - an Elasticsearch cluster could not do what was asked.
  + ClusterUnreachable - no connection (refused, DNS, reset).
    - ClusterTimeout - the cluster did not answer in time.
    - ClusterTLSError - the TLS handshake failed (certificate, CA).
  + ClusterUnavailable - the cluster answered 5xx (no master, shards unavailable).
  + ClusterAuthError - the credentials were refused (401).
  + ClusterForbidden - the credentials (or run_as user) lack a privilege (403).
  + DeploymentNotFound - the deployment is gone (404).
  + DeploymentConflict - a pipeline, alias or endpoint still uses the deployment (409).
  + ClusterBadRequest - any other 4xx.
  + UnknownCluster - the command named a cluster the config does not define.
  + ClusterBadAnswer - the cluster (or a proxy before it) answered in a shape the bot cannot
    read: not JSON, not an object, a documented field missing or of the wrong type.
  + ClusterUnexpected - anything else; the message carries the detail.
* StoreUnavailable - the state store (SQLite, Redis) cannot be reached; nothing was done.
"""

from __future__ import annotations


class ClusterError(Exception):
    """An Elasticsearch failure, phrased for the person who asked."""

    kind = "unknown"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ClusterUnreachable(ClusterError):
    """No connection to the cluster."""

    kind = "unreachable"


class ClusterTimeout(ClusterUnreachable):
    """The cluster did not answer in time."""

    kind = "timeout"


class ClusterTLSError(ClusterUnreachable):
    """The TLS handshake with the cluster failed."""

    kind = "tls"


class ClusterUnavailable(ClusterError):
    """The cluster answered but cannot serve (5xx)."""

    kind = "unavailable"


class ClusterAuthError(ClusterError):
    """The cluster refused the credentials (401)."""

    kind = "auth"


class ClusterForbidden(ClusterError):
    """The credentials lack a privilege (403)."""

    kind = "forbidden"


class DeploymentNotFound(ClusterError):
    """The deployment does not exist (any more)."""

    kind = "not_found"


class DeploymentConflict(ClusterError):
    """Something still uses the deployment (409)."""

    kind = "conflict"


class ClusterBadRequest(ClusterError):
    """Any other refusal (4xx)."""

    kind = "bad_request"


class UnknownCluster(ClusterError):
    """The command named a cluster the config does not define."""

    kind = "unknown_cluster"


class ClusterBadAnswer(ClusterError):
    """An answer whose shape is not what Elasticsearch documents: nothing in it is believed."""

    kind = "bad_answer"


class ClusterUnexpected(ClusterError):
    """An error the adapter has no better name for."""

    kind = "unknown"


STORE_DOWN = "cannot reach the state store; nothing was done"


class StoreUnavailable(Exception):
    """The state store cannot be reached (Redis down, SQLite disk error)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or STORE_DOWN)
        self.message = STORE_DOWN
