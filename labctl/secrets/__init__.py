"""Secrets: the references an inventory holds instead of values, and the run's box of them.

An inventory never holds a secret's value, only a reference to where it lives
(a file, an environment variable); ``references.py`` resolves one and says, in a
sentence, why it cannot. ``box.py`` is a run's ``SecretBox``: it fills the
references in where a file is pushed, and remembers only seals of the values, so
plans, their JSON and the journal never see one. Import the modules themselves
(``from labctl.secrets.references import resolve``); this package re-exports nothing.
"""
