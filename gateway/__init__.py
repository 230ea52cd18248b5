"""fincat gateway: REST and GraphQL over the catalog."""
