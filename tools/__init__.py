"""The operations the agent calls: pure, seeded functions first, thin model-facing wrappers second."""
