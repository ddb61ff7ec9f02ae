"""The driver hosts' seccomp allowlist: what it refuses, and that hosts still work under it.

The refusals are tried in child processes that install the real filter
(nothing is mocked: the kernel answers), one of them on a real TAP; the host
tests run drivers in real sandboxed host processes and fire every fault knob
that ends a host.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest
import trio

import ndisproxy
from ndisproxy import seccomp, tap

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures

needs_x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64",
                                  reason="the host filter is x86-64 only")

# The end of each child script below, which sets ``attempts`` up: try each,
# print {attempt: "ok" or the errno's name}.
TRY_ATTEMPTS = r'''
import errno, json
result = {}
for what, attempt in attempts.items():
    try:
        attempt()
        result[what] = "ok"
    except OSError as exc:
        result[what] = errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps(result))
'''

# no_new_privs, the host filter, then the attempts.  Every attempt that would
# create a process or thread exits the copy at once should the filter let
# it through.
ATTEMPTS = r'''
import ctypes, errno, fcntl, json, os, select, signal, socket, sys, threading
from ndisproxy import privileges, seccomp

libc = ctypes.CDLL(None, use_errno=True)
scratch = sys.argv[1]


def syscall(number, *args):
    rc = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if rc == 0 and number in (56, 57, 58):
        os._exit(0)                   # a child the filter should have refused
    if rc < 0:
        raise OSError(ctypes.get_errno(), "")


def opened(path, flags):
    os.close(os.open(path, flags, 0o600))


def thread():
    ran = []
    worker = threading.Thread(target=ran.append, args=(1,))
    worker.start()
    worker.join()
    assert ran == [1]


def fork():
    if os.fork() == 0:
        os._exit(0)


left, right = socket.socketpair()
parent = os.getppid()
thread_name = ctypes.create_string_buffer(b"ndisproxy-test")
fs_base = ctypes.c_ulong()
attempts = {
    # Allowed: what hosts do.
    "thread": thread,
    "socketpair(AF_UNIX)": lambda: socket.socketpair()[0].close(),
    "setblocking (FIONBIO)": lambda: left.setblocking(False),
    "read /proc/self/status": lambda: opened("/proc/self/status", os.O_RDONLY),
    "fcntl(F_GETFL)": lambda: fcntl.fcntl(left, fcntl.F_GETFL),
    "eventfd": lambda: os.close(os.eventfd(0)),
    "epoll": lambda: select.epoll().close(),
    "tgkill(self, 0)": lambda: signal.pthread_kill(threading.get_ident(), 0),
    "prctl(PR_SET_NAME)": lambda: syscall(157, 15, ctypes.addressof(thread_name)),
    "arch_prctl(ARCH_SET_GS)": lambda: syscall(158, 0x1001, 0),
    # Refused: new sockets of any family, so no netlink, no network, no
    # control socket.
    "socket(AF_NETLINK)": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0),
    "socket(AF_UNIX)": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
    "socket(AF_INET)": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    "socketpair(AF_INET)": lambda: socket.socketpair(socket.AF_INET),
    "setsockopt(SO_PRIORITY)": lambda: left.setsockopt(socket.SOL_SOCKET,
                                                        socket.SO_PRIORITY, 1),
    # No programs, processes or namespaces; threads only.
    "execve": lambda: os.execv("/bin/true", ["true"]),
    "fork": fork,
    "clone(CLONE_NEWNET)": lambda: syscall(56, 0x40000000 | signal.SIGCHLD, 0, 0, 0, 0),
    "clone3": lambda: syscall(435, 0, 0),
    "unshare(CLONE_NEWUSER)": lambda: syscall(272, 0x10000000),
    "setns": lambda: syscall(308, os.open("/proc/self/ns/net", os.O_RDONLY), 0),
    "mount": lambda: syscall(165, 0, 0, 0, 0, 0),
    # Nobody else's processes.
    "ptrace(PTRACE_TRACEME)": lambda: syscall(101, 0, 0, 0, 0),
    "process_vm_readv(parent)": lambda: syscall(310, parent, 0, 0, 0, 0, 0),
    "kill(parent, 0)": lambda: os.kill(parent, 0),
    "tgkill(parent, 0)": lambda: syscall(234, parent, parent, 0),
    "fcntl(F_SETOWN)": lambda: fcntl.fcntl(left, fcntl.F_SETOWN, parent),
    # No files written, created or truncated.
    "open for writing": lambda: opened(os.path.join(scratch, "new"), os.O_WRONLY | os.O_CREAT),
    "open O_RDWR": lambda: opened("/dev/null", os.O_RDWR),
    "open O_TRUNC": lambda: opened(os.path.join(scratch, "existing"), os.O_RDONLY | os.O_TRUNC),
    # Only the ioctls hosts use: not the TAP's administrative ones.
    "ioctl(TUNSETIFF)": lambda: fcntl.ioctl(left, 0x400454CA, bytes(40)),
    "ioctl(TUNSETPERSIST)": lambda: fcntl.ioctl(left, 0x400454CB, 0),
    "ioctl(SIOCSIFHWADDR)": lambda: fcntl.ioctl(left, 0x8924, bytes(40)),
    # The kernel's administrative, tracing and other large interfaces.
    "prctl(PR_GET_DUMPABLE)": lambda: syscall(157, 3),
    # gs: is the KPCR's (ARCH_SET_GS); fs: stays glibc's, not even read.
    "arch_prctl(ARCH_GET_FS)": lambda: syscall(158, 0x1003, ctypes.addressof(fs_base)),
    "bpf": lambda: syscall(321, 0, 0, 0),
    "perf_event_open": lambda: syscall(298, 0, 0, -1, -1, 0),
    "keyctl": lambda: syscall(250, 0, 0),
    "io_uring_setup": lambda: syscall(425, 1, 0),
    "userfaultfd": lambda: syscall(323, 0),
    "memfd_create": lambda: syscall(319, 0, 0),
}
open(os.path.join(scratch, "existing"), "w").write("kept")
privileges.set_no_new_privs()
seccomp.install_host_filter()
'''

ALLOWED = ("thread", "socketpair(AF_UNIX)", "setblocking (FIONBIO)", "read /proc/self/status",
           "fcntl(F_GETFL)", "eventfd", "epoll", "tgkill(self, 0)", "prctl(PR_SET_NAME)",
           "arch_prctl(ARCH_SET_GS)")


def run_child(script, *args):
    return subprocess.run([sys.executable, "-I", "-c", script, *map(str, args)], cwd="/",
                          capture_output=True, text=True, timeout=60)


@needs_x86_64
def test_the_filter_refuses_what_a_host_never_needs(tmp_path):
    child = run_child(ATTEMPTS + TRY_ATTEMPTS, tmp_path)
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    expected = {what: "ok" if what in ALLOWED else "EPERM" for what in result}
    expected["clone3"] = "ENOSYS"           # glibc then falls back to clone
    assert result == expected
    assert (tmp_path / "existing").read_text() == "kept"
    assert not (tmp_path / "new").exists()


# Each prints its getpid() answer, so the test can see it works unfiltered.
FOREIGN_CALLS = {
    # x32 numbers (bit 30 set) pass the architecture check: the filter has
    # to refuse them itself; the table means nothing in that numbering.
    "x32": "print(ctypes.CDLL(None).syscall(ctypes.c_long(0x40000000 | 39)), flush=True)\n",
    # int 0x80 from a 64-bit process is the i386 ABI (getpid is 20 there).
    "i386": "import mmap\n"
            "code = bytes.fromhex('b814000000' 'cd80' 'c3')   # mov eax, 20; int 0x80; ret\n"
            "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
            "page.write(code)\n"
            "address = ctypes.addressof(ctypes.c_char.from_buffer(page))\n"
            "print(ctypes.CFUNCTYPE(ctypes.c_int)(address)(), flush=True)\n",
}


@needs_x86_64
@pytest.mark.parametrize("abi", FOREIGN_CALLS)
def test_a_foreign_system_call_abi_kills_the_process(abi):
    setup = "import ctypes\nfrom ndisproxy import privileges, seccomp\n"
    bare = run_child(setup + FOREIGN_CALLS[abi])
    if bare.returncode != 0:            # e.g. booted with ia32_emulation=0
        pytest.skip(f"{abi} system calls fail here even unfiltered: {bare.returncode}")
    filtered = run_child(setup + "privileges.set_no_new_privs()\n"
                         "seccomp.install_host_filter()\n"
                         "print('installed', flush=True)\n" + FOREIGN_CALLS[abi])
    assert bare.stdout.strip().lstrip("-").isdigit(), bare
    assert filtered.stdout.split() == ["installed"]
    assert filtered.returncode == -signal.SIGSYS


def test_the_program_is_the_table():
    host = seccomp.host_filter(4242)
    rules = [rule for group in seccomp.HOST_ALLOWLIST.values() for rule in group]
    assert host.allowed == tuple(sorted(rule.name for rule in rules))
    assert len(set(host.allowed)) == len(host.allowed)
    assert len({rule.number for rule in rules}) == len(rules)
    assert len(host.program) == 8 * host.instructions <= 8 * 4096
    # The pid that tgkill may signal is in the program, and only that one.
    assert (4242).to_bytes(4, "little") in host.program
    assert host.program != seccomp.host_filter(4243).program
    for never in ("socket", "connect", "execve", "fork", "kill", "ptrace", "unshare", "setns",
                  "mount", "bpf", "open", "openat2", "clone3"):
        assert never not in host.allowed


@pytest.mark.parametrize("knob, fault", [
    ("overflow", "StackOverflowFault"),
    ("crash", "AccessViolationFault"),
    ("hang", "DriverTimeoutFault"),
    ("bugcheck", "BugCheckFault"),
])
async def test_a_sandboxed_host_reports_its_fault_and_is_replaced(require_net,  # noqa: F811
                                                                   knob, fault):
    async with ndisproxy.open_host() as host:
        nic = await host.add_adapter(unique_name("nps"), wire=ndisproxy.SocketWire())
        sandbox = host._daemon.adapters[nic.name].sandbox
        assert sandbox["seccomp"] == "allowlist"
        assert sandbox["syscalls_allowed"] == len(seccomp.host_filter(0).allowed)
        assert sandbox["new_sockets"] == "denied (Operation not permitted)"
        first = nic.pid
        events = nic.events()
        await nic.inject(knob)
        with trio.fail_after(20):
            async for event in events:
                if event.kind == "fault":
                    assert event.fields["type"] == fault, event
                if nic.restarts and nic.state == "running":
                    break
        assert nic.pid != first
        # The replacement moves frames: the data path works under the filter.
        broadcast = b"\xff" * 6 + bytes.fromhex("02aabbccddee88b5") + bytes(46)
        with trio.fail_after(5):
            while (await nic.stats())["pump"]["wire_in"] == 0:
                await nic.wire.send(broadcast)
                await trio.sleep(0.05)


# On an attached TAP fd whose TAP has no owner, these need no capability:
# without the filter a host could change the TAP's MAC, give it away, or
# make it vanish when the host exits.
TAP_IOCTLS = r'''
import errno, fcntl, json, struct, sys
from ndisproxy import privileges, seccomp, tap

name = sys.argv[1]
fd = tap.open_tap(name)
privileges.drop_capabilities()
privileges.set_no_new_privs()
seccomp.install_host_filter()
ifreq_mac = struct.pack("16sH6s", name.encode(), 1, bytes.fromhex("02deadbeef01")) + bytes(16)
attempts = {
    "TUNSETCARRIER": lambda: tap.set_carrier(fd, True),
    "SIOCSIFHWADDR": lambda: fcntl.ioctl(fd, 0x8924, ifreq_mac),
    "TUNSETOWNER": lambda: fcntl.ioctl(fd, 0x400454CC, 65534),
    "TUNSETPERSIST": lambda: fcntl.ioctl(fd, 0x400454CB, 0),
}
'''


@needs_x86_64
def test_a_sandboxed_host_cannot_reconfigure_its_tap(require_net):  # noqa: F811
    name = unique_name("npk")
    tap.create_tap(name, mac="02:4e:50:00:00:07")
    try:
        child = run_child(TAP_IOCTLS + TRY_ATTEMPTS, name)
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout) == {"TUNSETCARRIER": "ok", "SIOCSIFHWADDR": "EPERM",
                                            "TUNSETOWNER": "EPERM", "TUNSETPERSIST": "EPERM"}
        survivor = tap.find_tap(name)           # still persistent after the fd closed
        assert survivor is not None and survivor.mac == "02:4e:50:00:00:07"
    finally:
        tap.delete_tap(name, missing_ok=True)


def test_docs_security_lists_the_allowlist():
    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    section = text.split("## The system call allowlist", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    # The system calls are the names in backquotes; their conditions are in
    # parentheses.
    documented = {group.strip(): set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", calls)))
                  for _, group, calls, *_ in rows[1:]}
    table = {group: {rule.name for rule in rules}
             for group, rules in seccomp.HOST_ALLOWLIST.items()}
    host = seccomp.host_filter(0)
    assert documented == table
    assert f"{host.instructions} instructions" in section
    assert f"{len(host.allowed)} system calls" in text
