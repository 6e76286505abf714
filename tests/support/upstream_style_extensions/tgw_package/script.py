"""Shouts the reply, with a helper imported as upstream does (extensions.<name>.<module>)."""

from extensions.tgw_package.helper import shout

params = {"activate": False}


def output_modifier(string, state):
    return shout(string) if params["activate"] else string
