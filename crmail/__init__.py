"""crmail: a self-hosted CRM whose heart is email."""

__version__ = "0.1.0"
