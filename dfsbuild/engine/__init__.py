"""The build engine: settings, content keys and the cache, state, the one-output build step,
doit tasks (tasks.py is the only module that imports doit) and the reporter."""
