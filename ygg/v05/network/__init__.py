"""The sans-IO v0.5 routing core (ironwood 743fe2f ``network/``): wire formats and blooms."""
