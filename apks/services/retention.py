"""Retention of releases (point 9; written below)."""


def purge_old_releases(**kwargs) -> int:
    return 0
