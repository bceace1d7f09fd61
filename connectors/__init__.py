"""Sources: how events enter Murmur (publish, synthetic population, replay)."""
