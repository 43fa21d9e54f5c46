"""``espstream console``: the operator's web pages over the topics.

Recent events, a message's or a recipient's timeline (from an in-memory index a
background reader keeps), dead letters with redrive, event rates as SVG charts.
Server-rendered HTML, no JavaScript; loopback only unless a password is set.
"""
