"""Short markdown playbooks served as flowscope://playbooks/<name> resources."""
