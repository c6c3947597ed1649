"""The Slack adapter: Bolt wiring, Block Kit messages, action ids, notices, workflow step."""
