"""The local text adapter: slash commands typed at a prompt, messages read as text."""
