"""Fault injection: what a user sees when processes die and the broker goes away (`make faults`)."""
