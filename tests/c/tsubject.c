/* Daemon shapes for tests/trace.rs, written for this project. Usage: tsubject MODE DIR
 * Each mode daemonizes in its own way (or gets one thing wrong on purpose), then sleeps
 * so the trace sees the daemon it left. DIR holds its lock and pid files. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

static char lockpath[4096];

/* Parent exits, child carries on. */
static void fork_away(void) {
    pid_t pid = fork();
    if (pid < 0) exit(1);
    if (pid > 0) _exit(0);
}

/* A write lock on the pid file, and our PID in it. Returns the fd. */
static int lock_and_write(void) {
    int fd = open(lockpath, O_RDWR | O_CREAT, 0644);
    if (fd < 0) exit(2);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) < 0) exit(3);
    char buf[32];
    if (ftruncate(fd, 0) < 0) exit(4);
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (write(fd, buf, n) != n) exit(5);
    return fd;
}

static void close_all(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) exit(6);
    long max = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4096 ? 4096 : (long)rl.rlim_max;
    for (long i = 0; i < max; i++) close((int)i);
}

static void null_stdio(void) {
    int fd0 = open("/dev/null", O_RDWR);
    int fd1 = dup(0);
    int fd2 = dup(0);
    if (fd0 != 0 || fd1 != 1 || fd2 != 2) exit(7);
}

/* The rules in the order of APUE 13.3, then the single-instance lock of 13.5. */
static void by_the_book(void) {
    umask(0);
    fork_away();
    setsid();
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    fork_away();
    if (chdir("/") < 0) exit(8);
    close_all();
    null_stdio();
    openlog("tsubject", LOG_CONS | LOG_PID, LOG_DAEMON);
    lock_and_write();
}

int main(int argc, char **argv) {
    if (argc < 3) return 64;
    const char *mode = argv[1];
    snprintf(lockpath, sizeof lockpath, "%s/tsubject.pid", argv[2]);
    if (!strcmp(mode, "apue")) {
        by_the_book();
    } else if (!strcmp(mode, "logs")) {
        /* By the book, then one message through syslog(3) to /dev/log. */
        by_the_book();
        syslog(LOG_NOTICE, "tsubject is a daemon now, pid %ld", (long)getpid());
    } else if (!strcmp(mode, "busy")) {
        /* Unrelated calls first: under a filter they never stop the program. */
        for (long i = 0; i < 200000; i++) (void)getppid();
        by_the_book();
    } else if (!strcmp(mode, "daemon3")) {
        if (daemon(0, 0) < 0) return 9;
    } else if (!strcmp(mode, "setsid-first")) {
        /* The classic bug: setsid() as the group leader a shell made us: EPERM. */
        setsid();
        fork_away();
    } else if (!strcmp(mode, "pidfile-before-fork")) {
        umask(0);
        int fd = open(lockpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        if (write(fd, buf, n) != n) return 10;
        close(fd);
        fork_away();
        setsid();
        fork_away();
    } else if (!strcmp(mode, "lock-before-fork")) {
        lock_and_write();
        fork_away();
        setsid();
    } else if (!strcmp(mode, "closed-lock")) {
        fork_away();
        setsid();
        lock_and_write();
        close_all();
        null_stdio();
    } else if (!strcmp(mode, "acquire-tty")) {
        fork_away();
        setsid();
        /* A session leader opening a free terminal without O_NOCTTY: a new pty's slave. */
        int master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) return 11;
        if (open(ptsname(master), O_RDWR) < 0) return 12;
    } else if (!strcmp(mode, "stdio")) {
        fork_away();
        setsid();
        close(0);
        close(1);
        close(2);
        char log[4096];
        snprintf(log, sizeof log, "%s/tsubject.log", argv[2]);
        if (open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) != 0) return 13;
    } else if (!strcmp(mode, "foreground")) {
        /* A new-style service: does none of it. */
    } else if (!strcmp(mode, "exit")) {
        return 0;
    } else if (!strcmp(mode, "spin")) {
        /* For benches/trace.rs: 2 000 000 calls no rule is about, then exit. */
        for (long i = 0; i < 2000000; i++) (void)getppid();
        return 0;
    } else if (!strcmp(mode, "umasks")) {
        /* For benches/trace.rs: 1 000 rule events (umask), then exit. */
        for (int i = 0; i < 1000; i++) umask(i & 0777);
        return 0;
    } else {
        return 64;
    }
    for (;;) pause();
}
