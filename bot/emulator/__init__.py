"""A faithful Elasticsearch ML trained-model API emulator (aiohttp), for tests and `--demo`.

`Emulator(state, auth=..., version=...)` serves the real paths with the real status codes,
error bodies and headers (see shared/reference/elasticsearch-ml.md); `/_emulator/...` is the
test interface (faults, queued work, request log). State files: see README.md in this package.
"""

from bot.emulator.demo import demo_state
from bot.emulator.loader import dump_state, load_state
from bot.emulator.server import Emulator, RequestRecord
from bot.emulator.state import (
    ApiKey,
    ClusterState,
    Deployment,
    InferenceEndpoint,
    Model,
    Role,
    User,
)

__all__ = [
    "ApiKey",
    "ClusterState",
    "Deployment",
    "Emulator",
    "InferenceEndpoint",
    "Model",
    "RequestRecord",
    "Role",
    "User",
    "demo_state",
    "dump_state",
    "load_state",
]
