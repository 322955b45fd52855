"""virt-customize commands that ``sysprep.commands`` may use, and their rule.

The table lists every customization command of virt-customize, True when the
command takes an argument (what the stage script passes as a second argv
element). Sources: the argspec of
libguestfs/libguestfs-common@46605b8:mlcustomize/customize_cmdline.ml (lines
168-491: String options take an argument, Unit/Set ones are flags; there
`selinux-relabel` is now a no-op kept for compatibility) plus the
subscription-manager commands still present in libguestfs 1.48 (Debian 12,
`virt-customize --long-options`). tests/integration/test_customize_commands.py
checks the installed virt-customize against it. General options (--add,
--network, --commands-from-file, ...) are deliberately absent: they are not
customizations and build.sh sets them itself.
"""

from __future__ import annotations

import difflib

CUSTOMIZE_COMMANDS: dict[str, bool] = {
    "append-line": True, "chmod": True, "chown": True, "copy": True, "copy-in": True,
    "delete": True, "edit": True, "firstboot": True, "firstboot-command": True,
    "firstboot-install": True, "hostname": True, "inject-blnsvr": True,
    "inject-qemu-ga": True, "inject-virtio-win": True, "install": True, "link": True,
    "mkdir": True, "move": True, "no-logfile": False, "password": True,
    "password-crypto": True, "root-password": True, "run": True, "run-command": True,
    "scrub": True, "selinux-relabel": False, "sm-attach": True, "sm-credentials": True,
    "sm-register": False, "sm-remove": False, "sm-unregister": False, "ssh-inject": True,
    "tar-in": True, "timezone": True, "touch": True, "truncate": True,
    "truncate-recursive": True, "uninstall": True, "update": False, "upload": True,
    "write": True,
}


# Commands whose argument is a comma-separated package list (checked like install).
PACKAGE_COMMANDS = frozenset({"install", "uninstall", "firstboot-install"})


def command_problem(name: str, argument: str | None) -> str | None:
    """What is wrong with one command, or None."""
    takes = CUSTOMIZE_COMMANDS.get(name)
    if takes is None:
        close = difflib.get_close_matches(name, sorted(CUSTOMIZE_COMMANDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"'{name}' is not a virt-customize command{hint}"
    if takes and argument is None:
        return f"virt-customize command '{name}' needs an argument: write {{{name}: ...}}"
    if not takes and argument is not None:
        return (f"virt-customize command '{name}' takes no argument: write it as a bare "
                f"list item '{name}'")
    return None
