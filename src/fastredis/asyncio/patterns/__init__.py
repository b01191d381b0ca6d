"""The asyncio twins of the patterns (:mod:`fastredis.patterns`): the same
names, arguments, results and Lua scripts, awaited on an asyncio client
(``fastredis.asyncio.Redis``, ``redis.asyncio.Redis`` or an asyncio cluster
client). Each class is a thin shell: what an operation sends and how its
reply is read are the sync pattern's plans, run by
:func:`fastredis.scripts.arun`. Import them from :mod:`fastredis.asyncio`."""
