"""The Slack listeners, one module per job; `bot.slack.app.SlackAdapter` combines them.

`base` holds the Slack I/O they share, `running` the path from a started action to its
result; `commands`, `clicks` (preview buttons, restart), `approvals` (the approval card)
and `step` (the Workflow Builder step) hold the listeners.
"""
