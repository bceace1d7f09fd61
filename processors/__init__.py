"""Stream processors: one Faust agent per module; the decision logic of each
is a pure function the agent calls, tested without Kafka."""
