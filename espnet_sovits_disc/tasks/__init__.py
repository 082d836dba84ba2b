"""ESPnet tasks with the plugin registered."""
