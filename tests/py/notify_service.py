#!/usr/bin/env python3
"""A small service for tests/service.rs: the program `daemonlab service` starts.

    python3 tests/py/notify_service.py MODE [ARG...]

Each mode shows one thing a service manager must judge: readiness, reload, stop, a
start that never ends, a watchdog, a child that is not the main process, socket
activation, a SysV-style forking daemon. The notify and listen sides are written from
sd_notify(3) and sd_listen_fds(3) with the standard library only, so a reader sees the
whole protocol: text lines in one datagram, descriptors by SCM_RIGHTS.
"""

import array
import os
import selectors
import signal
import socket
import sys
import time


def say(line):
    """One line to stdout, flushed: the manager reads it from a pipe, and a fork
    must not copy unwritten text into the child."""
    print(line, flush=True)


def notify(text, fds=None):
    """Send one state message to the manager, as sd_notify(3) does; no socket, no-op.

    The manager learns our PID from the kernel (SO_PASSCRED on its side), so the
    message carries only the text. Returns whether it was sent."""
    where = os.environ.get("NOTIFY_SOCKET")
    if not where:
        return False
    if where.startswith("@"):
        where = "\0" + where[1:]  # the abstract namespace: no file on disk
    elif not where.startswith("/"):
        print(f"NOTIFY_SOCKET={where!r} is neither a path nor @abstract", file=sys.stderr)
        return False
    data = text.encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            # Descriptors travel beside the text as SCM_RIGHTS; the kernel installs
            # copies in the receiver. (socket.send_fds would drop `where` in 3.11.)
            rights = []
            if fds:
                rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
            s.sendmsg([data], rights, 0, where)
    except OSError as e:
        # A manager that went away must not turn a clean stop into a traceback.
        print(f"cannot notify {where!r}: {e}", file=sys.stderr)
        return False
    return True


def on_sigterm(signum, frame):
    notify("STOPPING=1")
    say("stopping")
    sys.exit(0)


def on_sighup(signum, frame):
    # Type=notify-reload: RELOADING=1 carries the monotonic clock, so the manager can
    # tell that this reload began after its SIGHUP; READY=1 ends it.
    now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notify(f"RELOADING=1\nMONOTONIC_USEC={now_usec}")
    say("reloading")
    time.sleep(0.1)
    notify("READY=1\nSTATUS=serving (reloaded)")


def wait_forever():
    while True:
        signal.pause()


def mode_ready():
    signal.signal(signal.SIGHUP, on_sighup)
    notify("STATUS=warming up")
    time.sleep(0.2)
    notify("READY=1\nSTATUS=serving")
    wait_forever()


def mode_never_ready():
    notify("STATUS=still starting")
    wait_forever()


def mode_slow_ready(seconds):
    seconds = float(seconds)
    # Ask for more time than the manager's start timeout before we need it.
    notify(f"EXTEND_TIMEOUT_USEC={int((seconds + 2) * 1e6)}")
    time.sleep(seconds)
    notify("READY=1")
    wait_forever()


def mode_watchdog(pings):
    # The manager says how often it expects a ping; half of that leaves a margin.
    period_usec = int(os.environ.get("WATCHDOG_USEC", "1000000"))
    notify("READY=1")
    for _ in range(int(pings)):
        time.sleep(period_usec / 2 / 1e6)
        notify("WATCHDOG=1")
    wait_forever()  # alive, but silent: the manager should call that a hang


def mode_trigger():
    notify("READY=1")
    time.sleep(0.2)
    notify("WATCHDOG=trigger")  # fail now, as if the pings had stopped
    wait_forever()


def mode_errno():
    notify("ERRNO=2\nSTATUS=cannot open the configuration")
    print("config missing", file=sys.stderr, flush=True)
    sys.exit(1)


def mode_child_ready():
    child = os.fork()
    if child == 0:
        # Not the main process: a manager with NotifyAccess=main must refuse this.
        notify("READY=1\nSTATUS=from the child")
        os._exit(0)
    os.waitpid(child, 0)
    time.sleep(0.3)
    notify("READY=1\nSTATUS=from the main process")
    wait_forever()


def mode_mainpid():
    child = os.fork()
    if child == 0:
        time.sleep(0.1)  # let the parent's MAINPID= arrive first
        notify("READY=1\nSTATUS=the child is main now")
        wait_forever()
    # Only the main process may hand its role on; after this, our exit is not the
    # service's.
    notify(f"MAINPID={child}")
    time.sleep(0.3)
    sys.exit(0)


def mode_listen():
    # sd_listen_fds(3): the descriptors are ours only if LISTEN_PID is our PID. The
    # variables are inherited by anything we fork, and a child must not take them.
    pid = os.environ.get("LISTEN_PID", "")
    count = os.environ.get("LISTEN_FDS", "")
    if pid != str(os.getpid()) or not count.isdigit() or int(count) < 1:
        print(
            f"not socket-activated: LISTEN_PID={pid!r} (we are {os.getpid()}), "
            f"LISTEN_FDS={count!r}",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(3)
    n = int(count)
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    names = [names[i] if i < len(names) and names[i] else "unknown" for i in range(n)]
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)  # so no child of ours mistakes them for its own

    # Passed descriptors start at 3, after stdin, stdout and stderr.
    sel = selectors.DefaultSelector()
    for i, name in enumerate(names):
        sock = socket.socket(fileno=3 + i)  # family and type are read from the fd
        sock.set_inheritable(False)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, name)

    notify(f"READY=1\nSTATUS=listening on {n} sockets: {', '.join(names)}")
    greeting = os.getpid()
    while True:
        for key, _ in sel.select():
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                continue  # another process or a reset connection took it
            with conn:
                conn.setblocking(True)
                conn.sendall(f"hello from {greeting} via {key.data}\n".encode())


def mode_forking(pidfile):
    # The SysV shape of APUE 13.3, judged from outside: the first parent exits only
    # when the daemon is ready, and the pid file names the daemon.
    pidfile = os.path.abspath(pidfile)
    r, w = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(w)
        ok = os.read(r, 1) == b"x"  # empty: the daemon died before it was ready
        os.waitpid(first, 0)
        sys.exit(0 if ok else 1)
    os.close(r)
    os.setsid()  # a new session, no controlling terminal
    if os.fork() > 0:
        os._exit(0)  # the middle one goes, so the daemon is not a session leader

    def on_term(signum, frame):
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
        os._exit(0)

    # Catch SIGTERM before the pid file names us: a manager may signal at once.
    signal.signal(signal.SIGTERM, on_term)
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.write(w, b"x")  # the file is complete: now the first parent may exit
    os.close(w)
    wait_forever()


def mode_fdstore():
    notify("READY=1")
    r, w = os.pipe()
    os.write(w, b"kept by the manager\n")  # proof, for whoever reads it back
    notify("FDSTORE=1\nFDNAME=mypipe", fds=[r])
    wait_forever()  # w stays open, so the stored end never reads end-of-file


def mode_exit(code):
    notify("READY=1")
    time.sleep(0.2)
    sys.exit(int(code))


# Each mode with the names of the arguments it takes, for the usage line.
MODES = {
    "ready": (mode_ready, ()),
    "never-ready": (mode_never_ready, ()),
    "slow-ready": (mode_slow_ready, ("SECONDS",)),
    "watchdog": (mode_watchdog, ("PINGS",)),
    "trigger": (mode_trigger, ()),
    "errno": (mode_errno, ()),
    "child-ready": (mode_child_ready, ()),
    "mainpid": (mode_mainpid, ()),
    "listen": (mode_listen, ()),
    "forking": (mode_forking, ("PIDFILE",)),
    "fdstore": (mode_fdstore, ()),
    "exit": (mode_exit, ("CODE",)),
}


def main(argv):
    mode, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if mode not in MODES or len(args) != len(MODES[mode][1]):
        print("usage: notify_service.py MODE [ARG...], one of:", file=sys.stderr)
        for name, (_, params) in MODES.items():
            print(f"  {' '.join((name,) + params)}", file=sys.stderr)
        return 2
    run, _ = MODES[mode]
    say(f"notify_service {mode} pid {os.getpid()}")
    if mode != "forking":  # the forking daemon's SIGTERM is its grandchild's
        signal.signal(signal.SIGTERM, on_sigterm)
    run(*args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
