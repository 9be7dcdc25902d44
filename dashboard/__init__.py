"""Tokenscope: see how a causal language model writes text one token at a time."""
