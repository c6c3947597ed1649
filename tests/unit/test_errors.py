"""The adapter maps elasticsearch-py and elastic_transport exceptions onto one class per kind."""

from __future__ import annotations

import elastic_transport
import pytest
from elasticsearch import ApiError, AuthenticationException, ConflictError, NotFoundError

from bot.adapters.elasticsearch import to_domain_error
from bot.core import errors


def api_error(cls: type[ApiError], status: int, reason: str) -> ApiError:
    meta = elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders(),
        duration=0.0,
        node=elastic_transport.NodeConfig("http", "localhost", 9200),
    )
    cause = {"type": "x_exception", "reason": reason}
    return cls(message="x_exception", meta=meta, body={"error": cause, "status": status})


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api_error(NotFoundError, 404, "no such deployment"), errors.DeploymentNotFound),
        (api_error(ConflictError, 409, "used by pipelines"), errors.DeploymentConflict),
        (api_error(AuthenticationException, 401, "bad key"), errors.ClusterAuthError),
        (api_error(ApiError, 503, "no master"), errors.ClusterUnavailable),
        (api_error(ApiError, 400, "bad"), errors.ClusterBadRequest),
        (elastic_transport.ConnectionTimeout("timed out"), errors.ClusterTimeout),
        (elastic_transport.TlsError("bad cert"), errors.ClusterTLSError),
        (elastic_transport.ConnectionError("refused"), errors.ClusterUnreachable),
        (RuntimeError("odd"), errors.ClusterUnexpected),
    ],
)
def test_each_failure_maps_to_its_class(
    exc: Exception, expected: type[errors.ClusterError]
) -> None:
    err = to_domain_error(exc, cluster="c", operation="stop", deployment_id="d", timeout=5)
    assert type(err) is expected and err.kind == expected.kind and err.message


def test_timeouts_and_tls_are_kinds_of_unreachable() -> None:
    assert issubclass(errors.ClusterTimeout, errors.ClusterUnreachable)
    assert issubclass(errors.ClusterTLSError, errors.ClusterUnreachable)
    kinds = [c.kind for c in errors.ClusterError.__subclasses__()]
    assert len(kinds) == len(set(kinds))
