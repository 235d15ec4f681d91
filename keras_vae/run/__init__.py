"""A run's life: the command-line plumbing, its directory and lock, training, callbacks,
crash-safe resuming, distribution, and the machine's facts.
"""
