"""Usage lines, full help texts, and the usage error a parser returns (pure)."""

from __future__ import annotations

from bot.core.commands.requests import UsageError
from bot.core.commands.tokens import (
    AUDIT,
    DEPLOYMENTS,
    MAX_REASON_LENGTH,
    SCALE,
    START,
    STATUS,
    STOP,
)

USAGE_LINES: dict[str, str] = {
    STOP: (
        "/ml-stop <deployment_id> [--force] [--finish-pending-work] "
        "[--allow-no-match | --no-allow-no-match] [--cluster NAME] [--reason TEXT] "
        "[--for DURATION | --until TIME] | freeze [--for DURATION | --until TIME] | unfreeze"
    ),
    DEPLOYMENTS: "/ml-deployments [pattern] [--cluster NAME]",
    START: (
        "/ml-start <model_id> [--deployment-id ID] [--allocations N] [--threads N] "
        "[--priority normal|low] [--cluster NAME] [--reason TEXT]"
    ),
    AUDIT: "/ml-audit [--incident ID] [--since 2h] [--format text|markdown]",
    SCALE: (
        "/ml-scale <deployment_id> --allocations N | --adaptive on [--min N] [--max M] | "
        "--adaptive off [--allocations N] [--cluster NAME] [--reason TEXT] "
        "[--for DURATION | --until TIME]"
    ),
    STATUS: "/ml-status [deployment_id] [--cluster NAME]",
}


def error(command: str, message: str) -> UsageError:
    return UsageError(command=command, message=message, usage=USAGE_LINES[command])


_STOP_HELP = f"""\
Usage: {USAGE_LINES[STOP]}

Stop an Elasticsearch trained-model deployment. You get a preview (what will stop, which
ingest pipelines use it) and a Stop button; nothing stops until you press it.

<deployment_id>          one id (`elser-prod`), a comma list without spaces (`a,b`),
                         a wildcard (`elser-*`) or `_all`. Ids are lowercase letters,
                         digits, `-`, `_`, `.`; at most 64 characters. Wildcards, lists
                         and `_all` need extra permission.
--force                  stop even if ingest pipelines still use the deployment, or it
                         is failing to stop cleanly.
--finish-pending-work    let queued inference requests finish before stopping
                         (otherwise they are dropped).
--no-allow-no-match      refuse unless every id/pattern matches a deployment
                         (default: unmatched ids are listed and left alone).
--cluster NAME           the Elasticsearch cluster (default: the configured one).
--reason TEXT            why, for the audit log and the channel; quote several words:
                         --reason "OOM loop, see INC-123". At most {MAX_REASON_LENGTH} characters.
--for DURATION           restart it by itself after `30s`, `30m`, `2h` or `1d` (from 10 s),
                         with the settings it has now. The restart is approved with the stop.
--until TIME             the same, at `HH:MM` (the config's time zone) or an ISO 8601 time.
-h, --help, help         this text.
freeze | unfreeze        (admins) refuse every stop and start until unfrozen;
                         `freeze --for 2h` unfreezes by itself.

Examples:
  /ml-stop elser-prod --reason "runaway memory"
  /ml-stop search-a,search-b --cluster staging
  /ml-stop .elser_model_2 --finish-pending-work
  /ml-stop ner-* --force --reason "INC-42"
  /ml-stop ner-prod --for 30m --reason "node replacement"
  /ml-stop freeze --for 2h
"""

_DEPLOYMENTS_HELP = f"""\
Usage: {USAGE_LINES[DEPLOYMENTS]}

List trained-model deployments and their state (read-only), then what the bot stopped in
the last 7 days that is still down (who, when, why), each with a Restart button.

[pattern]        an id, a comma list (`a,b`), a wildcard (`elser-*`) or `_all`;
                 all deployments if omitted.
--cluster NAME   the Elasticsearch cluster (default: the configured one).
-h, --help, help this text.

Examples:
  /ml-deployments
  /ml-deployments elser-*
  /ml-deployments --cluster staging
"""


_START_HELP = f"""\
Usage: {USAGE_LINES[START]}

Start a trained-model deployment. You get a preview and a Start button; nothing starts
until you confirm. (A stop's result message also offers "Restart with previous settings".)

<model_id>             the model to deploy (one exact id), or the id of a deployment the
                       bot stopped: it starts again with its model and previous settings.
--deployment-id ID     the deployment's id (default: the model id).
--allocations N        number of allocations (default 1).
--threads N            threads per allocation: 1, 2, 4, 8, 16 or 32 (default 1).
--priority normal|low  low priority runs on spare capacity with 1 allocation, 1 thread.
--cluster NAME         the Elasticsearch cluster (default: the configured one).
--reason TEXT          why, for the audit log and the channel.

Examples:
  /ml-start search-e5          (a deployment the bot stopped: back as it was)
  /ml-start .elser_model_2 --deployment-id elser-prod --allocations 2
  /ml-start my-ner-model --priority low --cluster staging
"""


_AUDIT_HELP = f"""\
Usage: {USAGE_LINES[AUDIT]}

What the bot did in this channel (or for an incident): time, who, what, flags, reason,
approvals and outcome, oldest first, with links to the messages.

--incident ID          an incident's actions, whatever channel they were asked in: asked
                       in its incident channel (`incidents:` in the config) or naming it
                       in the reason (`--reason "INC-4711: …"`).
--since DURATION       how far back: `30m`, `2h`, `7d` (default 24h, at most 90d).
--format markdown      plain Markdown to paste into a postmortem.
"""


_SCALE_HELP = f"""\
Usage: {USAGE_LINES[SCALE]}

Change how many allocations a deployment has, or its adaptive allocations, instead of
stopping it. You get a preview (before → after, ML memory, what uses it, which API) and a
Scale button; nothing changes until you confirm. The result can be reverted.

<deployment_id>        one id, a comma list (`a,b`), a wildcard (`elser-*`) or `_all`.
--allocations N        a fixed number of allocations (not with adaptive allocations on).
--adaptive on|off      turn adaptive allocations on (with optional bounds) or off.
--min N                adaptive lower bound; `--min 0` lets it scale to zero when idle.
--max M                adaptive upper bound (at least 1).
--cluster NAME         the Elasticsearch cluster (default: the configured one).
--reason TEXT          why, for the audit log and the channel (at most {MAX_REASON_LENGTH}).
--for DURATION         scale back by itself after `30s`, `30m`, `2h` or `1d` (from 10 s),
                       to the settings it has now. The scale back is approved with the scale.
--until TIME           the same, at `HH:MM` (the config's time zone) or an ISO 8601 time.

Examples:
  /ml-scale elser-prod --allocations 4 --reason "queue full"
  /ml-scale elser-search --adaptive on --max 2
  /ml-scale elser-search --adaptive off --allocations 2
  /ml-scale elser-prod --allocations 8 --until 06:00
"""

_STATUS_HELP = f"""\
Usage: {USAGE_LINES[STATUS]}

How a deployment is doing (read-only): state, allocations, nodes, queue, rejections,
timeouts, errors, inference time, throughput, what uses it, ML memory, and what to do.
Without an id: every deployment, the unhealthy ones first.

Examples:
  /ml-status elser-prod
  /ml-status --cluster staging
"""


def usage(command: str) -> str:
    """Full help text for a command (both commands if it is unknown)."""
    name = command.strip().lower() if isinstance(command, str) else ""
    if name and not name.startswith("/"):
        name = "/" + name
    if name == STOP:
        return _STOP_HELP
    if name == DEPLOYMENTS:
        return _DEPLOYMENTS_HELP
    if name == START:
        return _START_HELP
    if name == AUDIT:
        return _AUDIT_HELP
    if name == SCALE:
        return _SCALE_HELP
    if name == STATUS:
        return _STATUS_HELP
    return "\n".join(
        (_STOP_HELP, _DEPLOYMENTS_HELP, _START_HELP, _AUDIT_HELP, _SCALE_HELP, _STATUS_HELP)
    )
