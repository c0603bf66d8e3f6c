"""The engine core: hookspecs, plugin host, registries, pipeline, weights, devices, errors."""
