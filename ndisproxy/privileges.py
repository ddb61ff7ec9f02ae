"""Giving up privileges in the fork server and in driver hosts.

Driver code runs only in host processes, and a host holds nothing a
malicious driver could use: no capabilities (all five sets cleared, the
bounding set dropped), ``no_new_privs`` (no exec can give them back), and,
where the kernel has Landlock, no write access to any file - which is what
stops a host whose uid is still 0 from opening ``/dev/net/tun`` (the TAP
and wire fds it needs are handed to it already open).

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


# ---- seccomp --------------------------------------------------------------------

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1

# What a driver host never needs (x86-64 numbers): new sockets and
# connections (it is handed every fd it uses, so it cannot reach the control
# socket or the network), running programs, and the kernel's
# administrative, debugging and namespace interfaces.
HOST_DENIED_SYSCALLS = {
    "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "execve": 59,
    "truncate": 76,  # by path: Landlock before ABI 3 does not cover it
    "ptrace": 101, "pivot_root": 155, "chroot": 161, "mount": 165, "umount2": 166,
    "init_module": 175, "delete_module": 176, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "unshare": 272, "accept4": 288,
    "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "bpf": 321, "execveat": 322, "userfaultfd": 323, "io_uring_setup": 425,
}


def _bpf(code, jt, jf, k):
    return struct.pack("=HBBI", code, jt, jf, k)


def install_seccomp(denied=HOST_DENIED_SYSCALLS):
    """A seccomp filter: the ``denied`` system calls fail with EPERM, a
    foreign architecture is killed, everything else is allowed.  Needs
    no_new_privs first.  Only for x86-64 (the only machine drivers run on)."""
    if os.uname().machine != "x86_64":
        raise OSError(95, "seccomp filter: only x86-64 is supported")
    numbers = sorted(set(denied.values()))
    program = [
        _bpf(0x20, 0, 0, 4),                                     # ld arch
        _bpf(0x15, 1, 0, AUDIT_ARCH_X86_64),                     # jeq x86-64 ? skip : next
        _bpf(0x06, 0, 0, SECCOMP_RET_KILL_PROCESS),
        _bpf(0x20, 0, 0, 0),                                     # ld nr
    ]
    for i, number in enumerate(numbers):
        # Match: jump to the ERRNO return after the remaining tests and ALLOW.
        program.append(_bpf(0x15, len(numbers) - i, 0, number))
    program.append(_bpf(0x06, 0, 0, SECCOMP_RET_ALLOW))
    program.append(_bpf(0x06, 0, 0, SECCOMP_RET_ERRNO | EPERM))
    filters = ctypes.create_string_buffer(b"".join(program))
    fprog = struct.pack("HxxxxxxQ", len(program), ctypes.addressof(filters))
    fprog_buf = ctypes.create_string_buffer(fprog)
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.c_void_p(ctypes.addressof(fprog_buf)), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), "prctl(PR_SET_SECCOMP)")
