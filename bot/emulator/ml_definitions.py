"""What PUT _ml/trained_models checks and fills in about a model's config and definition.

- NLP inference configs refuse `vocabulary` (ES *Config STRICT_PARSER: "illegal setting
  [vocabulary] on inference model creation"); `fill_mask` gains its `mask_token` (from the
  tokenization, FillMaskConfig#toXContent) and `num_top_classes` 5 (DEFAULT_NUM_RESULTS).
- Tree and ensemble definitions (`definition.trained_model.tree|ensemble`) make a
  `tree_ensemble` model, with the validations and texts of ES inference_crud.yml.
- Elastic-provided models (`.elser_model_2`, ...) may be PUT with only `input`: the server
  fills the config and downloads the definition in the background.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from typing import Any

from bot.emulator import xcontent
from bot.emulator.errors import EsError, status_exception

JSON = dict[str, Any]
ELASTIC_MODELS = (
    ".elser_model_1",
    ".elser_model_2",
    ".elser_model_2_linux-x86_64",
    ".multilingual-e5-small",
    ".multilingual-e5-small_linux-x86_64",
    ".rerank-v1",
)
# Sizes the emulator gives a finished download (only their order of magnitude matters).
ELASTIC_MODEL_BYTES = {"elser": 438_123_914, "e5": 117_940_936, "rerank": 565_000_000}
NLP_CONFIGS = (
    "fill_mask",
    "ner",
    "pass_through",
    "question_answering",
    "text_classification",
    "text_embedding",
    "text_expansion",
    "text_similarity",
    "zero_shot_classification",
)
TREE_CONFIGS = ("regression", "classification")
# Tokenization#getMaskToken per tokenization kind ([MASK] for the BERT family).
MASK_TOKENS = {"roberta": "<mask>", "mpnet": "<mask>", "xlm_roberta": "<mask>"}


def elastic_model_config(model_id: str) -> JSON:
    """The inference_config the server gives an Elastic-provided model (simplified)."""
    if "elser" in model_id:
        return {"text_expansion": {}}
    if "rerank" in model_id:
        return {"text_similarity": {}}
    return {"text_embedding": {}}


def elastic_model_bytes(model_id: str) -> int:
    """A plausible definition size for a downloaded Elastic model."""
    kind = "elser" if "elser" in model_id else "rerank" if "rerank" in model_id else "e5"
    return ELASTIC_MODEL_BYTES[kind]


def _parse_failure(raw: str, parser: str, field: str, cause: JSON) -> EsError:
    """ObjectParser wrapping a field parser's exception (nesting inferred, see the docs)."""
    reason = f"{xcontent.location(raw, field)} [{parser}] failed to parse field [{field}]"
    return EsError(400, "x_content_parse_exception", reason, caused_by=cause)


def check_inference_config(raw: str, config: JSON) -> JSON:
    """Refuse `vocabulary`; fill fill_mask defaults. Returns the config to store."""
    result = dict(config)
    for kind, settings in config.items():
        if kind not in NLP_CONFIGS or not isinstance(settings, dict):
            continue
        if "vocabulary" in settings:
            cause = {
                "type": "status_exception",
                "reason": "illegal setting [vocabulary] on inference model creation",
            }
            inner = _parse_failure(raw, kind, "vocabulary", cause)
            outer_cause = {
                "type": inner.type,
                "reason": inner.reason,
                "caused_by": cause,
            }
            raise _parse_failure(raw, "trained_model_config", "inference_config", outer_cause)
        if kind == "fill_mask":
            result[kind] = _fill_mask(raw, settings)
    return result


def _fill_mask(raw: str, settings: JSON) -> JSON:
    """FillMaskConfig.Builder#build and #toXContent (mask_token from the tokenization)."""
    tokenization = settings.get("tokenization") or {"bert": {}}
    kind = next(iter(tokenization), "bert")
    expected = MASK_TOKENS.get(kind, "[MASK]")
    asked = settings.get("mask_token")
    if asked is not None and asked != expected:
        # FillMaskConfig.Builder#build throws IllegalArgumentException; declareNamedObject and
        # ObjectParser#parseValue each wrap it (the YAML tests match the IllegalArgumentException
        # in the stack trace that error_trace=true adds).
        cause = {
            "type": "illegal_argument_exception",
            "reason": f"Mask token requested was [{asked}] but must be [{expected}] for this model",
        }
        inner = _parse_failure(raw, "inference_config", "fill_mask", cause)
        outer_cause = {"type": inner.type, "reason": inner.reason, "caused_by": cause}
        raise _parse_failure(raw, "trained_model_config", "inference_config", outer_cause)
    return {
        **settings,
        "num_top_classes": settings.get("num_top_classes", 5),
        "mask_token": expected,
    }


# ---- tree / ensemble definitions --------------------------------------------------------------


def _trained_model(definition: Any) -> tuple[str, JSON] | None:
    """('tree'|'ensemble', spec) of definition.trained_model, if any."""
    if not isinstance(definition, dict):
        return None
    trained = definition.get("trained_model")
    if not isinstance(trained, dict):
        return None
    for kind in ("tree", "ensemble"):
        if isinstance(trained.get(kind), dict):
            return kind, trained[kind]
    return None


def _tree_operations(tree: JSON) -> int:
    """Tree#estimatedNumOperations, as the one YAML example pins it (two 3-node trees: 6)."""
    nodes = len(tree.get("tree_structure") or []) or 1
    return math.ceil(math.log2(nodes)) + 1


def _validate_tree(tree: JSON) -> None:
    feature_names = tree.get("feature_names") or []
    for node in tree.get("tree_structure") or []:
        if "leaf_value" in node:
            continue
        index = node.get("split_feature", 0)
        if isinstance(index, int) and index >= len(feature_names):
            raise status_exception(
                400, f"feature index [{index}] is out of bounds for the [feature_names] array"
            )


def _trees(kind: str, spec: JSON) -> list[JSON]:
    if kind == "tree":
        return [spec]
    models = spec.get("trained_models") or []
    if not models:
        raise status_exception(400, "[trained_models] must not be empty")
    return [m["tree"] for m in models if isinstance(m, dict) and isinstance(m.get("tree"), dict)]


def _target_type(kind: str, spec: JSON, trees: list[JSON]) -> str | None:
    if spec.get("target_type"):
        return str(spec["target_type"])
    if kind == "tree":
        return None
    types = {t.get("target_type") for t in trees if t.get("target_type")}
    return str(types.pop()) if len(types) == 1 else None


def check_tree_definition(model_id: str, body: JSON) -> JSON | None:
    """Validate a tree/ensemble definition; the computed config fields, or None if none."""
    found = _trained_model(body.get("definition"))
    if found is None:
        return None
    kind, spec = found
    field_names = (body.get("input") or {}).get("field_names")
    if isinstance(field_names, list) and not field_names:
        raise status_exception(400, "[input.field_names] must not be empty")
    trees = _trees(kind, spec)
    for tree in trees:
        _validate_tree(tree)
    target = _target_type(kind, spec, trees)
    config_kind = next(iter(body.get("inference_config") or {}), None)
    if target is not None and config_kind in TREE_CONFIGS and target != config_kind:
        raise status_exception(
            400,
            f"Model [{model_id}] inference config type [{config_kind}] does not support "
            f"definition target type [{target}]",
        )
    return {
        "model_size_bytes": len(json.dumps(body["definition"])),
        "estimated_operations": sum(_tree_operations(t) for t in trees),
    }


def compress_definition(definition: JSON) -> str:
    """InferenceToXContentCompressor: base64 of the gzipped JSON definition."""
    raw = json.dumps(definition, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def decompress_definition(compressed: str) -> JSON | None:
    """The definition inside a compressed one, or None when it does not decode."""
    try:
        data = json.loads(gzip.decompress(base64.b64decode(compressed, validate=True)))
    except (ValueError, OSError, EOFError):
        return None
    return data if isinstance(data, dict) else None


def definition_view(definition: JSON | None, compressed: str | None, decompress: bool) -> JSON:
    """The `definition` (or with decompress_definition=false `compressed_definition`) of GET
    include=definition; nothing for a model without one (pytorch models store parts)."""
    if decompress:
        found = (
            definition
            if definition is not None
            else (decompress_definition(compressed) if compressed is not None else None)
        )
        return {} if found is None else {"definition": found}
    if compressed is not None:
        return {"compressed_definition": compressed}
    if definition is not None:
        return {"compressed_definition": compress_definition(definition)}
    return {}
