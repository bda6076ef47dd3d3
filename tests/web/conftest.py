"""An app on the memory store with a frozen clock, and an httpx client that talks to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from burnlink.clock import FrozenClock
from burnlink.config import Settings, load_settings
from burnlink.store.memory import MemoryStore
from burnlink.web.app import create_app


@pytest.fixture
def settings() -> Settings:
    return load_settings(store="memory://", max_bytes=64 * 1024)


@pytest.fixture
def memory_store(settings: Settings) -> MemoryStore:
    return MemoryStore(retention=timedelta(days=settings.receipt_days))


@pytest.fixture
def app(settings: Settings, memory_store: MemoryStore, clock: FrozenClock) -> FastAPI:
    return create_app(settings, memory_store, clock)


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app``, started (lifespan), from 203.0.113.7 with a test user agent."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://burnlink.test",
            headers={"user-agent": "test-agent/1.0"},
        ) as http,
    ):
        yield http


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as http:
        yield http
