"""Client and transport exceptions → `bot.core.errors`, in words a person can act on."""

from __future__ import annotations

from collections.abc import Sequence

import elastic_transport
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    ConflictError,
    NotFoundError,
)

from bot.core.errors import (
    ClusterAuthError,
    ClusterBadRequest,
    ClusterError,
    ClusterForbidden,
    ClusterTimeout,
    ClusterTLSError,
    ClusterUnavailable,
    ClusterUnexpected,
    ClusterUnreachable,
    DeploymentConflict,
    DeploymentNotFound,
)

ElasticError = ClusterError  # the old name, kept for callers


def _reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            causes = err.get("root_cause") or []
            if causes and isinstance(causes[0], dict) and causes[0].get("reason"):
                return str(causes[0]["reason"])
            return str(err.get("reason") or err.get("type") or exc.message)
        if isinstance(err, str):
            return err
    return str(exc.message)


def _error_type(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type", ""))
    return ""


def _conflict_message(deployment_id: str, reason: str, pipelines: Sequence[str]) -> str:
    used_by = ", ".join(f"`{p}`" for p in pipelines)
    if "model_alias [" in reason:
        alias = reason.split("model_alias [", 1)[1].split("]", 1)[0]
        what = f"its model alias `{alias}` is used by ingest pipelines"
        return (
            f"deployment `{deployment_id}` was not stopped: {what}"
            + (f" ({used_by})" if used_by else "")
            + "; add `--force` to stop it anyway"
        )
    if "inference endpoint" in reason:
        return (
            f"deployment `{deployment_id}` was not stopped: {reason}; "
            "add `--force` to stop it anyway"
        )
    if used_by:
        return (
            f"deployment `{deployment_id}` is used by ingest pipeline(s) {used_by}; "
            "add `--force` to stop it anyway"
        )
    return f"deployment `{deployment_id}` was not stopped: {reason}"


def to_domain_error(
    exc: Exception,
    *,
    cluster: str,
    operation: str,
    deployment_id: str | None = None,
    pipelines: Sequence[str] = (),
    timeout: float | None = None,
) -> ElasticError:
    """Map a client or transport exception to a message a person can act on."""
    if isinstance(exc, ApiError):
        return _api_error(exc, cluster, operation, deployment_id, pipelines)
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        waited = f" within {timeout:g} s" if timeout else ""
        tail = (
            "; the stop may still be in progress: check `/ml-deployments`"
            if operation == "stop"
            else "; try again"
        )
        return ClusterTimeout(f"cluster `{cluster}` did not answer{waited}{tail}")
    if isinstance(exc, elastic_transport.TlsError):
        return ClusterTLSError(
            f"TLS handshake with cluster `{cluster}` failed ({exc.message}); "
            "check its CA certificate (`ca_certs` / ELASTICSEARCH_CA_CERTS)",
        )
    if isinstance(exc, elastic_transport.ConnectionError):
        return ClusterUnreachable(
            f"cannot reach cluster `{cluster}` ({exc.message}); is it up and is the URL right?",
        )
    detail = str(exc).strip() or type(exc).__name__  # never nothing after the colon
    return ClusterUnexpected(f"unexpected error talking to cluster `{cluster}`: {detail}")


def _api_error(
    exc: ApiError,
    cluster: str,
    operation: str,
    deployment_id: str | None,
    pipelines: Sequence[str],
) -> ElasticError:
    status = exc.meta.status
    reason = _reason(exc)
    if isinstance(exc, NotFoundError) and deployment_id:
        return DeploymentNotFound(
            f"deployment `{deployment_id}` no longer exists on `{cluster}` "
            "(stopped already, or never deployed)",
            status=status,
        )
    if isinstance(exc, ConflictError) and deployment_id:
        return DeploymentConflict(
            _conflict_message(deployment_id, reason, pipelines), status=status
        )
    if isinstance(exc, AuthorizationException) and " run as [" in reason:
        return ClusterForbidden(
            f"cluster `{cluster}` refused to {operation} as your Elasticsearch user: {reason}",
            status=status,
        )
    if isinstance(exc, AuthorizationException) and "unauthorized to run as" in reason:
        return ClusterForbidden(
            f"the bot may not act as your Elasticsearch user on `{cluster}` (run_as): {reason}",
            status=status,
        )
    if isinstance(exc, AuthorizationException):
        advice = "give its role `manage_ml`"
        if "granted by the cluster privileges [" in reason:
            privileges = reason.split("granted by the cluster privileges [", 1)[1].split("]")[0]
            advice = f"give its role one of the cluster privileges {privileges}"
        return ClusterForbidden(
            f"the bot's Elasticsearch user may not {operation} on `{cluster}`; {advice}",
            status=status,
        )
    if isinstance(exc, AuthenticationException):
        return ClusterAuthError(
            f"cluster `{cluster}` rejected the bot's credentials (401); check its API key "
            "or user and password",
            status=status,
        )
    if status == 429:
        return ClusterUnavailable(
            f"cluster `{cluster}` is overloaded (429 {_error_type(exc)}: {reason}); "
            "try again in a minute",
            status=status,
        )
    if status >= 500:
        return ClusterUnavailable(
            f"cluster `{cluster}` failed ({status} {_error_type(exc)}: {reason}); "
            "try again, or check the cluster's health",
            status=status,
        )
    return ClusterBadRequest(
        f"cluster `{cluster}` rejected the request ({status}: {reason})",
        status=status,
    )


def _transport_status(exc: elastic_transport.TransportError) -> str:
    """The metrics' status label for a call that got no HTTP answer."""
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        return "timeout"
    if isinstance(exc, elastic_transport.TlsError):
        return "tls"
    if isinstance(exc, elastic_transport.ConnectionError):
        return "unreachable"
    return "error"


def _unreadable(what: str, privilege: str, exc: Exception) -> str:
    """Why an impact read failed, for the preview's "unknown" line."""
    if isinstance(exc, AuthorizationException):
        return f"could not read {what}: missing {privilege}"
    if isinstance(exc, ApiError):
        return f"could not read {what} ({exc.meta.status}: {_reason(exc)})"
    return f"could not read {what} ({type(exc).__name__})"
