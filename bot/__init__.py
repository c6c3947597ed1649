"""ml-chatops: stop Elasticsearch ML deployments from Slack, safely."""

__version__ = "0.1.0"
