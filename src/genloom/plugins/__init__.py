"""Built-in plugins. Each is registered through the same path as a third-party plugin."""
