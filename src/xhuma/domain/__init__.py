"""The switch's core: transaction life cycle and outcome rules, free of HTTP and SQL."""
