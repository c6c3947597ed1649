"""The built-in demo cluster (`--demo`): models and deployments (a healthy, an overloaded and a
failing one among them), an ELSER inference endpoint with a semantic_text index, pipelines,
users."""

from __future__ import annotations

from bot.emulator.state import ClusterState, now_ms

ELSER = ".elser_model_2_linux-x86_64"
NER = "elastic__distilbert-base-uncased-finetuned-conll03-english"
E5 = ".multilingual-e5-small_linux-x86_64"
SENTIMENT = "distilbert-base-uncased-finetuned-sst-2-english"
LANG_IDENT = "lang_ident_model_1"
UNDEPLOYED = "sentence-transformers__all-minilm-l6-v2"
ENDPOINT = "elser-endpoint"
SEMANTIC_INDEX = "docs-semantic"
SEMANTIC_FIELD = "content"


CANARY = "canary-ner"
CANARY_CRASH = (
    f"inference process crashed due to reason [[{CANARY}] pytorch_inference/4821 process "
    "stopped unexpectedly: Fatal error: 'si_signo 9, si_code: 0, si_errno: 0'. Possibly the "
    "node ran out of memory]"
)


def _health(state: ClusterState) -> None:
    """One healthy, one overloaded and one failing deployment, for /ml-status."""
    now = now_ms()
    state.set_health(
        "elser-prod",
        average_inference_time_ms=41.7,
        average_inference_time_ms_last_minute=38.2,
        pending_requests=3,
        last_access=now - 1_000,
    )
    # Overloaded: the queue is full, requests are rejected and time out, latency climbs.
    state.set_health(
        "search-e5",
        queue_capacity=1024,
        pending_requests=1024,
        rejected_execution_count=4_812,
        rejections_per_read=37,
        timeout_count=219,
        error_count=3,
        average_inference_time_ms=212.4,
        average_inference_time_ms_last_minute=893.6,
        throughput_last_minute=1_150,
        peak_throughput_per_minute=1_214,
        last_access=now - 200,
    )
    # Failing: the node's process crashed; the route failed with the reason.
    state.start_deployment(NER, CANARY, inference_count=57)
    state.fail_deployment(CANARY, CANARY_CRASH)
    state.set_health(CANARY, error_count=57, last_access=now - 3_600_000)


def demo_state() -> ClusterState:
    """A realistic cluster: ELSER with two deployments, NER, E5, a low-priority one, and more."""
    state = ClusterState(cluster_name="ml-demo", node_name="es-ml-node-1")
    state.add_model(
        LANG_IDENT,
        model_type="lang_ident",
        definition_length=None,
        created_by="_xpack",
        description="Model used for identifying language from arbitrary input text.",
        tags=["lang_ident", "prepackaged"],
        inference_config={"classification": {}},
    )
    state.add_model(
        ELSER,
        description="Elastic Learned Sparse EncodeR v2 (x86-64 optimized)",
        inference_config={"text_expansion": {"results_field": "ml.tokens"}},
        definition_length=438_123_914,
        created_by="_xpack",
        tags=["elastic"],
    )
    state.add_model(
        NER,
        description="Named entity recognition (CoNLL-03)",
        inference_config={"ner": {"classification_labels": ["O", "B-PER", "I-PER"]}},
        definition_length=260_841_452,
    )
    state.add_model(
        E5,
        description="E5 small multilingual (x86-64 optimized)",
        inference_config={"text_embedding": {"embedding_size": 384}},
        definition_length=117_940_936,
        created_by="_xpack",
        tags=["elastic"],
    )
    state.add_model(
        SENTIMENT,
        description="Sentiment analysis (SST-2)",
        inference_config={
            "text_classification": {"classification_labels": ["NEGATIVE", "POSITIVE"]}
        },
        definition_length=267_844_588,
    )
    state.add_model(
        UNDEPLOYED,
        description="Sentence embeddings, not deployed",
        inference_config={"text_embedding": {"embedding_size": 384}},
        definition_length=90_867_126,
    )

    prod = state.start_deployment(
        ELSER,
        "elser-prod",
        number_of_allocations=2,
        threads_per_allocation=1,
        cache_size="100mb",
        inference_count=184_212,
    )
    prod.inference_cache_hit_count = 21_904
    prod.peak_throughput_per_minute = 1_310
    prod.throughput_last_minute = 640
    state.start_deployment(
        ELSER,
        "elser-search",
        number_of_allocations=1,
        threads_per_allocation=2,
        inference_count=52_877,
        adaptive_allocations={
            "enabled": True,
            "min_number_of_allocations": 1,
            "max_number_of_allocations": 4,
        },
    )
    state.start_deployment(NER, "ner-prod", inference_count=9_214)
    state.start_deployment(E5, "search-e5", number_of_allocations=2, inference_count=30_551)
    _health(state)
    state.start_deployment(SENTIMENT, inference_count=4_410)  # deployment id = model id
    state.start_deployment(SENTIMENT, "sentiment-batch", priority="low", inference_count=1_203)

    # An ELSER inference endpoint owns the deployment `elser-endpoint` (the stop API refuses
    # it without force), and an index's semantic_text field uses the endpoint.
    state.add_inference_endpoint(
        ENDPOINT,
        "sparse_embedding",
        ELSER,
        num_allocations=1,
        num_threads=1,
        chunking_settings={"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1},
    )
    served = state.deployments[ENDPOINT]  # it embeds every document of the semantic index
    served.inference_count = 12_480
    served.peak_throughput_per_minute = 96
    state.add_index(
        SEMANTIC_INDEX,
        {
            "properties": {
                "title": {"type": "text"},
                SEMANTIC_FIELD: {"type": "semantic_text", "inference_id": ENDPOINT},
            }
        },
    )

    # The server checks aliases of the model whose id equals the deployment id: the
    # sentiment alias blocks stopping SENTIMENT, the NER alias does not block `ner-prod`.
    state.put_alias(NER, "ner-current")
    state.put_alias(SENTIMENT, "sentiment-current")
    state.put_pipeline(
        "elser-ingest",
        {
            "description": "Sparse embeddings for the docs index",
            "processors": [
                {
                    "inference": {
                        "model_id": "elser-prod",
                        "input_output": [{"input_field": "body", "output_field": "ml.body_tokens"}],
                    }
                },
                {
                    "foreach": {
                        "field": "passages",
                        "processor": {
                            "inference": {
                                "model_id": "elser-prod",
                                "input_output": [
                                    {
                                        "input_field": "_ingest._value.text",
                                        "output_field": "_ingest._value.tokens",
                                    }
                                ],
                            }
                        },
                    }
                },
            ],
        },
    )
    state.put_pipeline(
        "ner-enrich",
        {
            "description": "Entities through the model alias",
            "processors": [
                {
                    "inference": {
                        "model_id": "ner-current",
                        "target_field": "ml.ner",
                        "on_failure": [{"set": {"field": "ner_failed", "value": True}}],
                    }
                }
            ],
        },
    )
    state.put_pipeline(
        "reviews-sentiment",
        {
            "description": "Sentiment through the model alias",
            "processors": [{"inference": {"model_id": "sentiment-current"}}],
        },
    )
    state.put_pipeline(
        "logs-default",
        {
            "description": "No inference here",
            "processors": [{"set": {"field": "ingested", "value": "{{_ingest.timestamp}}"}}],
        },
    )

    state.add_role("ml-operator", cluster=["manage_ml", "monitor", "read_pipeline"])
    state.add_role("ml-viewer", cluster=["monitor_ml"])
    state.add_role("bot-impersonator", cluster=["manage_ml"], run_as=["viewer"])
    state.add_user("elastic", "changeme", ["superuser"])
    state.add_user("ml-bot", "ml-bot-password", ["ml-operator"])
    state.add_user("viewer", "viewer-password", ["ml-viewer"])
    return state
