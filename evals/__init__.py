"""The benchmark: tasks, metrics, baselines, runner and report."""
