"""Clusters: the configured clusters' gateways by name, and the default."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.adapters.elasticsearch.client import build_client
from bot.adapters.elasticsearch.gateway import ClusterGateway
from bot.adapters.metrics import Metrics
from bot.core.config import ResolvedCluster
from bot.core.errors import UnknownCluster


class Clusters:
    """The configured clusters by name, and which one is the default."""

    def __init__(self, gateways: Mapping[str, ClusterGateway], default: str) -> None:
        self.gateways = dict(gateways)
        self.default = default

    @classmethod
    def from_config(
        cls,
        clusters: Mapping[str, ResolvedCluster],
        default: str,
        metrics: Metrics | None = None,
    ) -> Clusters:
        """Build one gateway (and client) per configured cluster."""
        return cls(
            {
                n: ClusterGateway(
                    n,
                    build_client(c),
                    c.request_timeout,
                    run_as=c.run_as,
                    run_as_users=c.run_as_users,
                    metrics=metrics,
                    connections=c.connections_per_node,
                )
                for n, c in clusters.items()
            },
            default,
        )

    def get(self, name: str | None) -> ClusterGateway:
        """The named cluster, or the default; ElasticError for an unknown name."""
        key = name or self.default
        if key not in self.gateways:
            known = ", ".join(f"`{n}`" for n in sorted(self.gateways))
            raise UnknownCluster(f"unknown cluster `{key}` (known: {known})")
        return self.gateways[key]

    async def close(self) -> None:
        """Close every client."""
        await asyncio.gather(*(g.close() for g in self.gateways.values()))
