"""Use cases, the dispatch table and the ports (Protocols) they need. Imports only bot.core."""
