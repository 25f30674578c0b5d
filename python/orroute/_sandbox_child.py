"""The code verifier's supervisor: confines model-written code, runs it, reports what held.

Not imported by orroute: ``orroute.verify.run_python`` runs this file's text with ``python -I -c``
(a fresh single-threaded process, so no preexec_fn in the engine's threaded process). Arguments:
cpu seconds, address-space bytes, wall timeout, interpreter, script, temp dir, disabled layers
(comma-separated; tests use it to exercise the fallbacks). It writes one JSON line to stdout:
``{"layers": [...], "missing": [...], "status": ["exit"|"signal", n], "timed_out": bool,
"disk_full": bool}``.

Layers, each used when the kernel allows it and reported as missing otherwise:
- ``netns``/``pidns``/``ipcns``: new network, PID and IPC namespaces (a user namespace when not
  root). No interface but a down loopback (abstract unix sockets are per network namespace); the
  code is PID 1 of its namespace, so when it ends or is killed the kernel kills every process it
  started, setsid'd or not; SysV IPC objects and POSIX queues it makes die with it.
- ``readonly``/``tmpfs``/``procfs``: the code's own mount namespace, where every mount is
  read-only but its work dir, a fresh tmpfs of WORK_BYTES / WORK_FILES (the disk it can fill),
  and /proc is a fresh one of its PID namespace (no other process, the caller included, is
  there). Without ``tmpfs``, ``diskwatch``: the supervisor sums the temp dir every WATCH_EVERY
  seconds and kills the code past the same bounds.
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
  process_vm_*, unshare/setns, keyctl/add_key/request_key, memfd_create, bpf, perf_event_open,
  userfaultfd fail (EPERM/EAGAIN/ENOSYS); another syscall ABI kills the process.
- ``nocaps``: root that cannot become nobody (its Python is not readable by 65534) keeps uid 0
  but with no capability at all.
- ``keyring``: a new empty session keyring (the caller's keys are not possessed); seccomp also
  refuses keyctl/add_key/request_key.

The code never runs as the caller's own identity with nothing confining its files: without
``uid``, ``landlock`` and ``readonly`` the child refuses (the caller's files, processes and their
/proc/<pid>/environ would all be open to it).
"""

import ctypes
import errno
import json
import os
import re
import resource
import select
import signal
import struct
import sys
import time

NOBODY = 65534
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x08000000
CLONE_NEWNET, CLONE_NEWPID = 0x40000000, 0x20000000
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 36, 38, 22
PR_CAPBSET_DROP, PR_SET_DUMPABLE = 24, 4
# the code's whole writable disk (tmpfs size, or the watchdog's bound) and its number of entries
WORK_BYTES, WORK_FILES, WATCH_EVERY = 64 << 20, 4096, 0.02
OPEN_FILES = 64  # RLIMIT_NOFILE: also bounds what deleted-but-open files hide from the watchdog

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def fail(what: str) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{what}: {os.strerror(e)}")


def prctl(option: int, arg: int) -> None:
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise fail(f"prctl {option}")


# ---------------------------------------------------------------------------- namespaces


REFUSED = (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS, errno.ENOSYS, errno.EACCES)


def enter_namespaces(root: bool, net_pid_ipc: bool, mounts: bool) -> bool:
    """New net + PID + IPC namespaces (the next fork becomes PID 1) and, when not root, the user
    namespace the child needs for its own mount namespace; False when the kernel refuses."""
    flags = (CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC) if net_pid_ipc else 0
    if not root and (flags or mounts):
        flags |= CLONE_NEWUSER
    if not flags:
        return False
    uid, gid = os.getuid(), os.getgid()  # after unshare, unmapped ids read as 65534
    if libc.unshare(flags) != 0:
        if ctypes.get_errno() in REFUSED:
            return False
        raise fail("unshare")
    if not root:  # map our own ids only: no root inside, no other user's files
        for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                f.write(text)
    return True


# ---------------------------------------------------------------------------- mounts

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
MOUNT_OPTIONS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
                 "nodiratime": 2048, "relatime": 1 << 21}  # kept on a remount: they may be locked
SYS_MOUNT_SETATTR, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 442, 0x8000, 1
# Where root keeps secrets that Landlock's /etc read rule would let a no-capability root code
# (still uid 0, their owner) read: hidden under /dev/null or an empty tmpfs in its namespace.
ROOT_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
                "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/root/.ssh")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    def c(x: str | None) -> bytes | None:
        return None if x is None else os.fsencode(x)

    if libc.mount(c(source), c(target), c(fstype), ctypes.c_ulong(flags), c(data)) != 0:
        raise fail(f"mount {target}")


def read_only_tree() -> bool:
    """Makes every mount of this (private) namespace read-only; False when the kernel refuses."""
    attr = struct.pack("QQQQ", MOUNT_ATTR_RDONLY, 0, 0, 0)
    if libc.syscall(SYS_MOUNT_SETATTR, -100, b"/", AT_RECURSIVE, attr, len(attr)) == 0:
        return True
    if ctypes.get_errno() != errno.ENOSYS:  # before Linux 5.12: one bind remount per mount
        return False
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        table = [line.split() for line in f]
    for fields in table:
        target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in fields[5].split(","):
            flags |= MOUNT_OPTIONS.get(opt, 0)
        try:
            mount(None, target, None, flags)
        except OSError:
            return False
    return True


def hide_root_secrets() -> None:
    """Covers ROOT_SECRETS that exist: a directory with an empty read-only tmpfs, a file with
    /dev/null."""
    for path in ROOT_SECRETS:
        if os.path.isdir(path) and not os.path.islink(path):
            mount("orroute-hidden", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,nr_inodes=1,mode=0")
        elif os.path.lexists(path) and not os.path.islink(path):
            mount("/dev/null", path, None, MS_BIND)


def confine_files(tmp: str, script: str, owner: tuple[int, int], pidns: bool) -> list[str]:
    """The child's own mount namespace: all read-only but a fresh size-capped tmpfs on the work
    dir (the script copied in), and a fresh /proc of its PID namespace. The layers in force."""
    if libc.unshare(CLONE_NEWNS) != 0:
        if ctypes.get_errno() in REFUSED:
            return []
        raise fail("unshare mount namespace")
    # first of all: nothing mounted here may propagate back to the caller's namespace
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    layers = ["readonly"] if read_only_tree() else []
    with open(script, "rb") as f:
        source = f.read()
    mount("orroute-verify", tmp, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={WORK_BYTES},nr_inodes={WORK_FILES},mode=700")
    os.chown(tmp, *owner)
    with open(script, "xb") as f:  # ENOSPC for a script larger than the work dir: setup fails
        f.write(source)
    layers.append("tmpfs")
    if owner[0] == 0:
        hide_root_secrets()
    if pidns:
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            layers.append("procfs")
        except OSError as e:  # e.g. a container's masked /proc: not "fully visible" to a userns
            if e.errno not in REFUSED + (errno.EBUSY,):
                raise
    os.chdir(tmp)  # the cwd still pointed at the directory beneath the tmpfs
    return layers


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

# EPERM: ptrace, process_vm_readv/writev, unshare, setns, io_uring_setup, add_key, request_key,
# keyctl, memfd_create (memory outside RLIMIT_AS and any tmpfs bound), and kernel surface no
# check needs: bpf, perf_event_open, userfaultfd; EAGAIN: fork, vfork
ARCHES = {  # machine: (AUDIT_ARCH, socket, clone, clone3, blocked with EPERM, with EAGAIN)
    "x86_64": (0xC000003E, 41, 56, 435, (101, 310, 311, 272, 308, 425, 248, 249, 250, 319, 321,
                                         298, 323), (57, 58)),
    "aarch64": (0xC00000B7, 198, 220, 435, (117, 270, 271, 97, 268, 425, 217, 218, 219, 279, 280,
                                            241, 282), ()),
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


SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING = {"x86_64": 250, "aarch64": 219}.get(
    os.uname().machine, -1), 1


def new_session_keyring() -> bool:
    """Joins a new anonymous session keyring: the keys the caller's session possesses are no
    longer possessed (as root before the uid change, so nobody's key quota is not spent)."""
    return SYS_KEYCTL >= 0 and libc.syscall(SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None) >= 0


def child(args: dict, report_w: int, alive_r: int) -> None:
    """Limits itself, reports its layers on ``report_w`` and execs the code (never returns)."""
    layers = []
    if "mounts" not in args["off"]:
        owner = (NOBODY, NOBODY) if args["drop_uid"] else (os.getuid(), os.getgid())
        layers += confine_files(args["tmp"], args["script"], owner, args["pidns"])
    if new_session_keyring():
        layers.append("keyring")
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)  # stdout is discarded; stderr (fd 2) is the parent's capped file
    cpu, mem = args["cpu"], args["mem"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
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
    if not {"uid", "landlock", "readonly"} & set(layers):
        os.write(2, b"sandbox failed: nothing confines the code's files (no uid change, Landlock "
                    b"or read-only mount namespace): it would run as this user\n")
        os._exit(126)
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


def work_dir_over(tmp: str) -> bool:
    """Whether the temp dir holds more than WORK_BYTES or WORK_FILES entries (an unreadable
    dir counts as over: the code made it so). Stops counting once over."""
    used, entries, stack = 0, 0, [tmp]
    try:
        while stack:
            try:
                it = os.scandir(stack.pop())
            except FileNotFoundError:
                continue  # removed while we walked (skipped, so churn cannot end the walk)
            with it:
                for e in it:
                    try:
                        used += e.stat(follow_symlinks=False).st_blocks * 512
                    except FileNotFoundError:
                        continue
                    entries += 1
                    if used > WORK_BYTES or entries > WORK_FILES:
                        return True
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
    except OSError:
        return True
    return False


def wait_watching(pid: int, tmp: str, deadline: float) -> tuple[int, str]:
    """Waits for the child while summing the temp dir (no tmpfs bounds it); kills the child
    at the deadline or past the bounds. Its wait status and "" / "timeout" / "disk" (past the
    bounds: killed, or seen so once it ended)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1  # before Linux 5.3: poll
    why = ""
    try:
        while True:
            if pidfd >= 0:
                select.select([pidfd], [], [], WATCH_EVERY)
            else:
                time.sleep(WATCH_EVERY)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                # the code may have gone past the bounds and ended between two looks: its
                # verdict says so all the same (else a fast enough writer would pass)
                if not why and work_dir_over(tmp):
                    why = "disk"
                return status, why
            if not why:
                why = ("timeout" if time.monotonic() >= deadline
                       else "disk" if work_dir_over(tmp) else "")
                if why:
                    os.kill(pid, signal.SIGKILL)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def main() -> None:
    cpu, mem, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    exe, script, tmp = sys.argv[4], sys.argv[5], sys.argv[6]
    off = set(filter(None, sys.argv[7].split(",")))
    root = os.geteuid() == 0
    layers, missing = [], []
    if enter_namespaces(root, "namespaces" not in off, "mounts" not in off):
        layers += [] if "namespaces" in off else ["netns", "pidns", "ipcns"]
    elif not root:
        off.add("mounts")  # an unprivileged mount namespace needs the user namespace
    drop_uid = False
    if root and "uid" not in off:
        os.chown(tmp, NOBODY, NOBODY)  # the code's working dir
        drop_uid = nobody_can_run(exe, script)
        if not drop_uid:  # e.g. a Python under /root: stay root, without capabilities
            os.chown(tmp, 0, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    layers.append("subreaper")
    # same-uid code without a PID namespace cannot open our /proc/<pid>/fd/1 (the report) or mem
    prctl(PR_SET_DUMPABLE, 0)
    report_r, report_w = os.pipe()
    alive_r, alive_w = os.pipe()
    args = {"cpu": cpu, "mem": mem, "exe": exe, "script": script, "tmp": tmp, "off": off,
            "drop_uid": drop_uid, "pidns": "pidns" in layers}
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
    if "tmpfs" not in layers:
        layers.append("diskwatch")
    expected = ["netns", "pidns", "ipcns", "readonly", "tmpfs", "procfs", "subreaper",
                "keyring", "landlock", "landlock-net", "landlock-scope",
                "seccomp"] + (["uid"] if root else ["nproc"])
    missing = [x for x in expected if x not in layers]
    deadline = time.monotonic() + timeout
    if "tmpfs" in layers:  # the kernel bounds the disk: just wait, woken by the timer
        timed_out = []

        def expire(signum: int, frame: object) -> None:
            timed_out.append(True)
            os.kill(pid, signal.SIGKILL)  # not yet reaped: the waitpid below is still waiting

        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        _, status = os.waitpid(pid, 0)  # retried after the handler (PEP 475)
        signal.setitimer(signal.ITIMER_REAL, 0)
        why = "timeout" if timed_out else ""
    else:
        status, why = wait_watching(pid, tmp, deadline)
    descendants_reaped()
    os.close(alive_w)
    if os.WIFSIGNALED(status):
        end = ["signal", os.WTERMSIG(status)]
    else:
        end = ["exit", os.waitstatus_to_exitcode(status)]
    sys.stdout.write(json.dumps({"layers": layers, "missing": missing, "status": end,
                                 "timed_out": why == "timeout",
                                 "disk_full": why == "disk"}) + "\n")


main()
