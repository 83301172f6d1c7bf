"""Local stand-ins for the mail providers' HTTP APIs, each a real HTTP server on loopback
that follows the provider's published documents and answers mistakes as the provider does."""
