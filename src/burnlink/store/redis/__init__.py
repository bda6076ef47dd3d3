"""The Redis backend (single node or Cluster): its store, its Lua scripts and its client."""

from burnlink.store.redis.store import RedisStore

__all__ = ["RedisStore"]
