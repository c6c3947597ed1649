"""Pure core: domain types, requests, outcomes, policy. No I/O: stdlib and pydantic only."""
