"""Placeholder: the amoebanet factory is being written (see its issue)."""


def amoebanet(**kwargs):
    raise NotImplementedError("amoebanet is not implemented yet")
