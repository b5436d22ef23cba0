"""Placeholder: the cascadenet factory is being written (see its issue)."""


def cascadenet(**kwargs):
    raise NotImplementedError("cascadenet is not implemented yet")
