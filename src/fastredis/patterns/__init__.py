"""The advanced Redis patterns: caching, rate limiting, leaderboards, analytics,
locks, sessions, presence, geo, pub/sub and streams."""
