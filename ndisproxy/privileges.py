"""Giving up privileges in the fork server and in driver hosts.

Driver code runs only in host processes, and a host holds nothing a
malicious driver could use: no capabilities (all five sets cleared, the
bounding set dropped), ``no_new_privs`` (no exec can give them back), and,
where the kernel has Landlock, no write access to any file - which is what
stops a host whose uid is still 0 from opening ``/dev/net/tun`` (the TAP
and wire fds it needs are handed to it already open).  Which system calls
it may still make is ndisproxy.seccomp's business.

These are thin wrappers over prctl(2), capset(2) and the Landlock
syscalls through ctypes; each raises OSError naming the call on failure.
"""
import ctypes
import ctypes.util
import os
import struct

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

SYS_capset = 126
SYS_landlock_create_ruleset = 444
SYS_landlock_add_rule = 445
SYS_landlock_restrict_self = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

# Landlock ABI 1 filesystem rights.
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1, 2, 4, 8
LL_REMOVE_DIR, LL_REMOVE_FILE, LL_MAKE_CHAR, LL_MAKE_DIR = 16, 32, 64, 128
LL_MAKE_REG, LL_MAKE_SOCK, LL_MAKE_FIFO, LL_MAKE_BLOCK, LL_MAKE_SYM = 256, 512, 1024, 2048, 4096
LL_ABI1_ALL = (1 << 13) - 1


def _check(rc, what):
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return rc


def _prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                       ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))


def drop_capabilities():
    """Clear the effective, permitted, inheritable, ambient and bounding sets."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        if _prctl(PR_CAPBSET_DROP, cap) < 0:
            err = ctypes.get_errno()
            if err == 1:        # EPERM: no CAP_SETPCAP (a hardened unit); with
                break           # the other sets empty and no_new_privs it is moot
            if err not in (0, 22):      # EINVAL: a capability the kernel lacks
                _check(-1, f"prctl(PR_CAPBSET_DROP, {cap})")
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = ctypes.create_string_buffer(struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(24)          # two zeroed __user_cap_data_struct
    _check(_libc.syscall(ctypes.c_long(SYS_capset), header, data), "capset")


def set_no_new_privs():
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")


def landlock_abi():
    """The kernel's Landlock ABI version, or 0 without Landlock.  A kernel
    that has it but forbids it (a seccomp filter: EPERM) raises OSError,
    so a host never runs without it unnoticed."""
    rc = _libc.syscall(ctypes.c_long(SYS_landlock_create_ruleset), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    if rc > 0:
        return rc
    err = ctypes.get_errno()
    if err in (38, 95):         # ENOSYS, EOPNOTSUPP: not built in, or disabled at boot
        return 0
    _check(-1, "landlock_create_ruleset(version)")
    return 0


def restrict_filesystem_to_reading():
    """Landlock: this process may read and execute files, and write none.

    Returns False (and changes nothing) when the kernel has no Landlock.
    Needs no_new_privs (or CAP_SYS_ADMIN) first, as Landlock requires.
    """
    if not landlock_abi():
        return False
    attr = struct.pack("Q", LL_ABI1_ALL)
    fd = _check(_libc.syscall(ctypes.c_long(SYS_landlock_create_ruleset), attr,
                              ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)),
                "landlock_create_ruleset")
    try:
        root = os.open("/", os.O_PATH | os.O_CLOEXEC)
        try:
            # struct landlock_path_beneath_attr is packed: u64 access; s32 fd.
            rule = struct.pack("=Qi", LL_EXECUTE | LL_READ_FILE | LL_READ_DIR, root)
            _check(_libc.syscall(ctypes.c_long(SYS_landlock_add_rule), ctypes.c_int(fd),
                                 ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), rule,
                                 ctypes.c_uint32(0)), "landlock_add_rule")
        finally:
            os.close(root)
        _check(_libc.syscall(ctypes.c_long(SYS_landlock_restrict_self), ctypes.c_int(fd),
                             ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(fd)
    return True


def capability_sets(pid="self"):
    """{'CapInh': int, 'CapPrm': ..., 'CapEff': ..., 'CapBnd': ..., 'CapAmb': ...}."""
    caps = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Cap"):
                key, value = line.split(":")
                caps[key] = int(value, 16)
    return caps


def describe_sandbox(report):
    """A host's sandbox report (hostproc's ``sandbox``, ``status --json``)
    in words, e.g. "no capabilities, no_new_privs, Landlock, seccomp
    allowlist of 50 system calls"; "" for an adapter without a host."""
    if not report:
        return ""
    parts = [what for what, held in (("no capabilities", report.get("cap_eff") == 0),
                                     ("no_new_privs", report.get("no_new_privs")),
                                     ("Landlock", report.get("landlock"))) if held]
    if report.get("seccomp") == "allowlist":
        parts.append(f"seccomp allowlist of {report.get('syscalls_allowed')} system calls")
    return ", ".join(parts)
