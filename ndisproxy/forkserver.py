"""The fork server: the one process driver hosts are forked from.

The proxy starts it once (``python -m ndisproxy.forkserver FD [USER]``) with one
end of a SOCK_SEQPACKET socketpair.  It imports everything a host runs,
drops every capability, confines itself as hosts must be (no_new_privs and
Landlock, which every host inherits), rehearses a host without a driver
(hostproc.rehearse), freezes what all that made out of the garbage
collector (so forked children keep sharing those pages), and then serves
requests, one JSON message each, with file descriptors attached:

    -> {"op": "spawn", "id": N, "spec": {...}}   fds: [host socket, fd, ...]
    <- {"op": "ready", "pid": PID}        (once, capabilities dropped)
    <- {"op": "spawned", "id": N, "pid": PID}
    <- {"op": "exited", "pid": PID, "status": CODE_OR_-SIGNAL}   (any time)

The child runs ndisproxy.hostproc with the host socket and the fds; the
server keeps no fd of its children and reaps them, reporting how each one
ended.  When the proxy's end closes, the server exits; hosts notice their
own sockets closing and stop by themselves.
"""
import gc
import json
import os
import signal
import socket
import traceback
import sys

MAX_MESSAGE = 1 << 16
MAX_FDS = 253                   # SCM_MAX_FD: the most one message can carry


def _report_exits(sock):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        try:
            sock.send(json.dumps({"op": "exited", "pid": pid, "status": code}).encode())
        except OSError:
            return


def _spawn(sock, request, fds):
    from . import hostproc

    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = hostproc.run(fds[0], request["spec"], fds[1:])
        except BaseException:
            # A bug of ours, not the driver's: say where, on the daemon's
            # stderr (the journal), before the exit status says "70".
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    sock.send(json.dumps({"op": "spawned", "id": request["id"], "pid": pid}).encode())


def serve(sock):
    signal.signal(signal.SIGCHLD, lambda *_: _report_exits(sock))
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the proxy decides when we end
    while True:
        try:
            message, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
        except ConnectionResetError:
            return
        if not message:
            return
        try:
            request = json.loads(message)
            if request.get("op") != "spawn" or not fds:
                raise ValueError(f"unknown request {request!r:.80}")
            if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
                raise ValueError(f"spawn request truncated (more than {MAX_FDS} fds?)")
            _spawn(sock, request, fds)
        except (ValueError, KeyError, TypeError) as exc:
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"op": "error", "error": str(exc)}).encode())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    # What every host runs, imported once here and shared by fork.
    from . import driver, host, hostproc, privileges, tap  # noqa: F401

    if len(argv) > 1:
        # [daemon] host_user: hosts run as this unprivileged user, so a
        # driver can read only what that user may read.
        import pwd
        entry = pwd.getpwnam(argv[1])
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    privileges.drop_capabilities()
    try:
        hostproc.confine()
    except OSError:
        pass                # each host tries again, and says why it cannot start
    hostproc.rehearse()
    gc.freeze()
    try:
        sock.send(json.dumps({"op": "ready", "pid": os.getpid()}).encode())
    except (BrokenPipeError, ConnectionResetError):
        return 0            # the proxy gave up on us before we were ready
    serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
