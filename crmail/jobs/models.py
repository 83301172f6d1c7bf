"""Leases: a named right, held by one process until it expires, renewed while it lives."""

from __future__ import annotations

from django.db import models


class Lease(models.Model):
    """Who holds a named lease (such as running the periodic jobs) and until when."""

    name = models.CharField(max_length=100, unique=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
