"""The code verifier's supervisor: confines model-written code, runs it, reports what held.

Not imported by orroute: ``orroute.verify.run_python`` runs this file's text with ``python -I -c``
(a fresh single-threaded process, so no preexec_fn in the engine's threaded process). Arguments:
cpu seconds, address-space bytes, wall timeout, interpreter, script, temp dir, disabled layers
(comma-separated; tests use it to exercise the fallbacks). It writes one JSON line to stdout:
``{"layers": [...], "missing": [...], "status": ["exit"|"signal", n], "timed_out": bool}``.

Layers, each used when the kernel allows it and reported as missing otherwise:
- ``netns``/``pidns``: new network and PID namespaces (a user namespace when not root). No
  interface but a down loopback; the code is PID 1 of its namespace, so when it ends or is killed
  the kernel kills every process it started, setsid'd or not.
- ``subreaper``: this supervisor adopts orphans and kills every descendant at the end (the
  fallback when there is no PID namespace).
- ``uid``: as root, the code runs as 65534 (nobody) with no groups, so RLIMIT_NPROC applies and
  root's files and processes are out of reach.
- ``nproc``: RLIMIT_NPROC 0 (no new process or thread for a non-root uid).
- ``landlock``: writes only beneath the temp dir (and /dev/null); reads only the interpreter's
  own paths, system dirs and a few character devices (no /home, /root, /proc/<other pid>, no
  block device); no TCP (ABI 4+); no signals
  or abstract unix sockets out of the sandbox (ABI 6+).
- ``seccomp``: socket(2), fork/vfork/clone (threads too), clone3, io_uring, ptrace,
  process_vm_*, unshare/setns fail (EPERM/EAGAIN/ENOSYS); another syscall ABI kills the process.
- ``nocaps``: root that cannot become nobody (its Python is not readable by 65534) keeps uid 0
  but with no capability at all.
"""

import ctypes
import errno
import json
import os
import resource
import signal
import struct
import sys

NOBODY = 65534
CLONE_NEWNS_USER, CLONE_NEWNET, CLONE_NEWPID = 0x10000000, 0x40000000, 0x20000000
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 36, 38, 22
PR_CAPBSET_DROP = 24

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def fail(what: str) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{what}: {os.strerror(e)}")


def prctl(option: int, arg: int) -> None:
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise fail(f"prctl {option}")


# ---------------------------------------------------------------------------- namespaces


def enter_namespaces(root: bool) -> bool:
    """New net + PID namespaces (the next fork becomes PID 1); False when the kernel refuses."""
    flags = CLONE_NEWNET | CLONE_NEWPID | (0 if root else CLONE_NEWNS_USER)
    if libc.unshare(flags) != 0:
        if ctypes.get_errno() in (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS,
                                  errno.ENOSYS, errno.EACCES):
            return False
        raise fail("unshare")
    if not root:  # map our own ids only: no root inside, no other user's files
        uid, gid = os.getuid(), os.getgid()
        for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                f.write(text)
    return True


# ---------------------------------------------------------------------------- landlock

LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1, 2, 4, 8
LL_FILE_ONLY = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE  # | TRUNCATE (ABI 3), added below
LL_TRUNCATE, LL_REFER = 1 << 14, 1 << 13
SYS_LL_CREATE, SYS_LL_ADD, SYS_LL_RESTRICT = 444, 445, 446  # the same on every architecture
# Not all of /dev: root without capabilities is still uid 0, the owner of root's 0600 block
# devices, and a raw disk read would bypass every rule here. Only what Python itself may open.
READ_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc",
             "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full",
             "/sys", "/proc/self", "/proc/cpuinfo", "/proc/meminfo")


class PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock(tmp: str, exe: str) -> list[str]:
    """Restricts this process and what it execs; the features in force (empty: unavailable)."""
    abi = libc.syscall(SYS_LL_CREATE, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return []
    fs = (1 << 13) - 1 | (LL_REFER if abi >= 2 else 0) | (LL_TRUNCATE if abi >= 3 else 0)
    file_ok = LL_FILE_ONLY | (LL_TRUNCATE if abi >= 3 else 0)
    net = 0b11 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, no rule allows either
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals
    attr = struct.pack("QQQ", fs, net, scoped)[: 24 if abi >= 6 else 16 if abi >= 4 else 8]
    ruleset = libc.syscall(SYS_LL_CREATE, attr, len(attr), 0)
    if ruleset < 0:
        raise fail("landlock_create_ruleset")
    read = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR
    rules = [(p, read) for p in READ_DIRS + (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                             os.path.dirname(exe), os.path.realpath(exe))]
    rules += [(p, read) for p in sys.path if p]
    rules += [(tmp, fs), ("/dev/null", LL_READ_FILE | LL_WRITE_FILE | (LL_TRUNCATE if abi >= 3
                                                                       else 0))]
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # absent on this system or not ours to read: not allowed then
            try:
                if not os.path.isdir(f"/proc/self/fd/{fd}"):
                    access &= file_ok
                rule = PathBeneath(access, fd)
                if libc.syscall(SYS_LL_ADD, ruleset, 1, ctypes.byref(rule), 0) != 0:
                    raise fail(f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        if libc.syscall(SYS_LL_RESTRICT, ruleset, 0) != 0:
            raise fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return ["landlock"] + (["landlock-net"] if net else []) + (["landlock-scope"] if scoped else [])


# ---------------------------------------------------------------------------- seccomp

ARCHES = {  # machine: (AUDIT_ARCH, socket, clone, clone3, blocked with EPERM, with EAGAIN)
    "x86_64": (0xC000003E, 41, 56, 435, (101, 310, 311, 272, 308, 425), (57, 58)),
    "aarch64": (0xC00000B7, 198, 220, 435, (117, 270, 271, 97, 268, 425), ()),
}
RET_ALLOW, RET_KILL, RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
LD_W_ABS, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06


def seccomp() -> bool:
    """Installs the filter (no_new_privs must be set); False on an unknown architecture."""
    arch = ARCHES.get(os.uname().machine)
    if arch is None:
        return False
    audit, sock, clone, clone3, eperm, eagain = arch
    prog = [(LD_W_ABS, 0, 0, 4), (JEQ, 1, 0, audit), (RET, 0, 0, RET_KILL),
            (LD_W_ABS, 0, 0, 0), (JGE, 0, 1, 0x40000000), (RET, 0, 0, RET_ERRNO | errno.ENOSYS)]
    for nr, err in ([(sock, errno.EPERM)] + [(n, errno.EPERM) for n in eperm]
                    + [(n, errno.EAGAIN) for n in eagain] + [(clone3, errno.ENOSYS)]):
        prog += [(JEQ, 0, 1, nr), (RET, 0, 0, RET_ERRNO | err)]
    # clone: no process and no thread either (as RLIMIT_NPROC 0 does for a non-root uid, which
    # root ignores); glibc tries clone3 first and falls back to clone on ENOSYS
    prog += [(JEQ, 0, 1, clone), (RET, 0, 0, RET_ERRNO | errno.EAGAIN), (RET, 0, 0, RET_ALLOW)]
    code = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    if libc.prctl(PR_SET_SECCOMP, 2, ctypes.c_char_p(fprog), 0, 0) != 0:
        raise fail("seccomp")
    return True


# ---------------------------------------------------------------------------- the child


def nobody_can_run(exe: str, script: str) -> bool:
    """Whether uid 65534 can exec the interpreter and read its paths and the script."""
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        paths = [p for p in [sys.prefix, *sys.path] if p and os.path.exists(p)]
        return (os.access(exe, os.X_OK, effective_ids=True)
                and os.access(script, os.R_OK, effective_ids=True)
                and all(os.access(p, os.R_OK, effective_ids=True) for p in paths))
    finally:
        os.seteuid(0)
        os.setegid(0)


def drop_capabilities() -> None:
    """Root that cannot become nobody keeps its uid but loses every capability (capset to 0)."""
    for cap in range(64):  # the bounding set first (needs CAP_SETPCAP, gone after capset)
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL: past the last capability this kernel knows
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = bytes(24)  # two {effective, permitted, inheritable} u32 triples, all zero
    if SYS_CAPSET < 0 or libc.syscall(SYS_CAPSET, header, data) != 0:
        raise fail("capset")


SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, -1)


def child(args: dict, report_w: int, alive_r: int) -> None:
    """Limits itself, reports its layers on ``report_w`` and execs the code (never returns)."""
    layers = []
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # stdout is discarded; stderr (fd 2) is the parent's capped file
    cpu, mem = args["cpu"], args["mem"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    if args["drop_uid"]:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        layers.append("uid")
    elif os.geteuid() == 0:
        drop_capabilities()
        layers.append("nocaps")
    if "nproc" not in args["off"]:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        if os.getuid() != 0:  # root ignores it
            layers.append("nproc")
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    os.set_blocking(alive_r, False)
    try:
        if os.read(alive_r, 1) == b"":  # the supervisor died before the line above
            os._exit(125)
    except BlockingIOError:
        pass
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if "landlock" not in args["off"]:
        layers += landlock(args["tmp"], args["exe"])
    if "seccomp" not in args["off"] and seccomp():
        layers.append("seccomp")
    os.write(report_w, json.dumps(layers).encode())
    os.execv(args["exe"], [args["exe"], "-I", "-B", args["script"]])


# ---------------------------------------------------------------------------- the supervisor


def descendants_reaped() -> None:
    """Kills and reaps every child until none is left (orphans re-parent to us: subreaper)."""
    while True:
        for pid in children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # no CONFIG_PROC_CHILDREN: scan for our children
        out = []
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/stat", encoding="ascii") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
        return out


def main() -> None:
    cpu, mem, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    exe, script, tmp = sys.argv[4], sys.argv[5], sys.argv[6]
    off = set(filter(None, sys.argv[7].split(",")))
    root = os.geteuid() == 0
    layers, missing = [], []
    if "namespaces" not in off and enter_namespaces(root):
        layers += ["netns", "pidns"]
    drop_uid = False
    if root and "uid" not in off:
        os.chown(tmp, NOBODY, NOBODY)  # the code's working dir
        drop_uid = nobody_can_run(exe, script)
        if not drop_uid:  # e.g. a Python under /root: stay root, without capabilities
            os.chown(tmp, 0, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    layers.append("subreaper")
    report_r, report_w = os.pipe()
    alive_r, alive_w = os.pipe()
    args = {"cpu": cpu, "mem": mem, "exe": exe, "script": script, "tmp": tmp, "off": off,
            "drop_uid": drop_uid}
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_r)
            os.close(alive_w)
            os.set_inheritable(report_w, False)
            child(args, report_w, alive_r)
        except BaseException as e:  # noqa: BLE001  # fail closed: the code never runs
            os.write(2, f"sandbox setup failed: {e}\n".encode(errors="replace"))
        os._exit(126)
    os.close(report_w)
    os.close(alive_r)
    report = b""
    while chunk := os.read(report_r, 4096):  # EOF at the child's exec (CLOEXEC) or exit
        report += chunk
    os.close(report_r)
    try:
        layers += json.loads(report) if report else []
    except ValueError:
        pass
    expected = ["netns", "pidns", "subreaper", "landlock", "landlock-net", "landlock-scope",
                "seccomp"] + (["uid"] if root else ["nproc"])
    missing = [x for x in expected if x not in layers]

    timed_out = []

    def expire(signum: int, frame: object) -> None:
        timed_out.append(True)
        os.kill(pid, signal.SIGKILL)  # not yet reaped: the waitpid below is still waiting

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    _, status = os.waitpid(pid, 0)  # retried after the handler (PEP 475)
    signal.setitimer(signal.ITIMER_REAL, 0)
    descendants_reaped()
    os.close(alive_w)
    if os.WIFSIGNALED(status):
        end = ["signal", os.WTERMSIG(status)]
    else:
        end = ["exit", os.waitstatus_to_exitcode(status)]
    sys.stdout.write(json.dumps({"layers": layers, "missing": missing, "status": end,
                                 "timed_out": bool(timed_out)}) + "\n")


main()
