"""Elasticsearch error bodies: the `{"error": {...}, "status": N}` shapes the real server sends."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


class EsError(Exception):
    """An error answered with Elasticsearch's structured body."""

    def __init__(
        self,
        status: int,
        type_: str,
        reason: str | None,
        *,
        extra: JSON | None = None,
        caused_by: JSON | None = None,
        headers: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_
        self.reason = reason
        self.extra = extra or {}
        self.caused_by = caused_by
        self.headers = headers or {}

    def body(self) -> JSON:
        """The JSON body, as ElasticsearchException#generateFailureXContent writes it."""
        cause: JSON = {"type": self.type, "reason": self.reason, **self.extra}
        error: JSON = {"root_cause": [dict(cause)], **cause}
        if self.caused_by is not None:
            error["caused_by"] = self.caused_by
        return {"error": error, "status": self.status}


class RawError(Exception):
    """An error whose body is not the structured shape (405, no handler, empty 404)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found(reason: str) -> EsError:
    """ResourceNotFoundException."""
    return EsError(404, "resource_not_found_exception", reason)


def status_exception(status: int, reason: str) -> EsError:
    """ElasticsearchStatusException (e.g. ExceptionsHelper.badRequestException)."""
    return EsError(status, "status_exception", reason)


def illegal_argument(reason: str) -> EsError:
    """IllegalArgumentException."""
    return EsError(400, "illegal_argument_exception", reason)


def validation_failed(*errors: str) -> EsError:
    """ActionRequestValidationException: numbered errors, each ended by ';'."""
    text = "".join(f"{i}: {e};" for i, e in enumerate(errors, start=1))
    return EsError(400, "action_request_validation_exception", f"Validation Failed: {text}")


def parse_error(reason: str) -> EsError:
    """XContentParseException from an ObjectParser."""
    return EsError(400, "x_content_parse_exception", reason)


def security_exception(status: int, reason: str, **kw: Any) -> EsError:
    """ElasticsearchSecurityException (401 authentication, 403 authorization)."""
    return EsError(status, "security_exception", reason, **kw)


def missing_model(model_id: str) -> EsError:
    """ExceptionsHelper.missingTrainedModel."""
    return not_found(f"No known trained model with model_id [{model_id}]")


def missing_deployment(deployment_id: str) -> EsError:
    """ExceptionsHelper.missingModelDeployment."""
    return not_found(f"No known model deployment with id [{deployment_id}]")


def validation_exception(*errors: str) -> EsError:
    """org.elasticsearch.common.ValidationException (inference settings parsing)."""
    text = "".join(f"{i}: {e};" for i, e in enumerate(errors, start=1))
    return EsError(400, "validation_exception", f"Validation Failed: {text}")


JAVA_DEFAULT = "org.elasticsearch.ElasticsearchException"
# Java classes behind the error types, for `stack_trace` (error_trace=true).
JAVA_CLASSES = {
    "x_content_parse_exception": "org.elasticsearch.xcontent.XContentParseException",
    "illegal_argument_exception": "java.lang.IllegalArgumentException",
    "illegal_state_exception": "java.lang.IllegalStateException",
    "status_exception": "org.elasticsearch.ElasticsearchStatusException",
    "resource_not_found_exception": "org.elasticsearch.ResourceNotFoundException",
    "resource_already_exists_exception": "org.elasticsearch.ResourceAlreadyExistsException",
    "action_request_validation_exception": (
        "org.elasticsearch.action.ActionRequestValidationException"
    ),
    "validation_exception": "org.elasticsearch.common.ValidationException",
    "security_exception": "org.elasticsearch.ElasticsearchSecurityException",
    "parse_exception": "org.elasticsearch.ElasticsearchParseException",
    "index_not_found_exception": "org.elasticsearch.index.IndexNotFoundException",
    "es_rejected_execution_exception": (
        "org.elasticsearch.common.util.concurrent.EsRejectedExecutionException"
    ),
}


def java_trace(error: JSON) -> str:
    """ExceptionsHelper.stackTrace of an error and its causes: `class: message` lines joined
    by `Caused by:` as Java prints them (frames are not emulated)."""
    lines: list[str] = []
    current: JSON | None = error
    while current is not None:
        name = JAVA_CLASSES.get(
            str(current.get("type")), "org.elasticsearch.ElasticsearchException"
        )
        lines.append(f"{'Caused by: ' if lines else ''}{name}: {current.get('reason')}")
        cause = current.get("caused_by")
        current = cause if isinstance(cause, dict) else None
    return "\n".join(lines)
