/* Subjects for tests/inspect_real.rs: small daemons of known shape, written for
 * daemonlab's tests (the shapes follow APUE 13.3 and 13.5; the code is our own). Each
 * mode writes the PIDs the test needs to a report file, then waits to be killed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *path, const char *text) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(90);
    if (write(fd, text, strlen(text)) < 0) _exit(91);
    close(fd);
    rename(tmp, path); /* the test sees the whole report or none */
}

static void report_pid(const char *path) {
    char line[64];
    snprintf(line, sizeof line, "%d\n", (int)getpid());
    report(path, line);
}

/* Detach as the chapter's rules say: fork, setsid, fork again, chdir, stdio on
 * /dev/null. The descriptors the test harness leaked are closed too. */
static void detach(int second_fork, int keep_stderr_free) {
    umask(0);
    if (fork() != 0) _exit(0);
    setsid();
    signal(SIGHUP, SIG_IGN);
    if (second_fork && fork() != 0) _exit(0);
    if (chdir("/") < 0) _exit(92);
    for (int fd = 0; fd < 1024; fd++) close(fd);
    open("/dev/null", O_RDWR);
    dup(0);
    if (!keep_stderr_free) dup(0);
}

static void wait_forever(void) {
    for (;;) pause();
}

/* One instance only: a write lock on the pid file, then the PID and a NUL. */
static void lock_pidfile(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) _exit(93);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) < 0) _exit(94);
    if (ftruncate(fd, 0) < 0) _exit(95);
    char text[32];
    int n = snprintf(text, sizeof text, "%d", (int)getpid());
    if (write(fd, text, n + 1) != n + 1) _exit(96); /* n + 1: the NUL goes too */
}

static void *idle_thread(void *arg) {
    (void)arg;
    wait_forever();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[1], *out = argv[2];
    if (!strcmp(mode, "apue")) {          /* out is the pid file */
        detach(1, 0);
        lock_pidfile(out);
        wait_forever();
    } else if (!strcmp(mode, "daemon3")) {
        if (daemon(0, 0) < 0) return 3;
        report_pid(out);
        wait_forever();
    } else if (!strcmp(mode, "reaper")) { /* a subreaper that starts daemon3 */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        pid_t child = fork();
        if (child == 0) {
            execl("/proc/self/exe", argv[0], "daemon3", out, (char *)NULL);
            _exit(97);
        }
        for (;;) {
            if (wait(NULL) < 0 && errno == ECHILD) pause();
        }
    } else if (!strcmp(mode, "logfd2")) { /* argv[3]: the log file on fd 2 */
        detach(1, 1);
        if (open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644) != 2) _exit(98);
        report_pid(out);
        wait_forever();
    } else if (!strcmp(mode, "sigterm")) {
        detach(1, 0);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        report_pid(out);
        wait_forever();
    } else if (!strcmp(mode, "worker")) {
        detach(1, 0);
        pid_t child = fork();
        if (child == 0) wait_forever();
        char line[64];
        snprintf(line, sizeof line, "%d %d\n", (int)getpid(), (int)child);
        report(out, line);
        wait_forever();
    } else if (!strcmp(mode, "--pidfile")) { /* an unlocked pid file: PID, newline */
        detach(1, 0);
        char line[64];
        snprintf(line, sizeof line, "%d\n", (int)getpid());
        report(out, line);
        wait_forever();
    } else if (!strcmp(mode, "listener")) { /* a bound port, kept across exec */
        detach(1, 0);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0) _exit(99);
        report_pid(out);
        wait_forever();
    } else if (!strcmp(mode, "thread")) {
        pthread_t t;
        pthread_create(&t, NULL, idle_thread, NULL);
        char line[64];
        usleep(1000);
        /* The new thread's TID: the task directory's other entry. */
        snprintf(line, sizeof line, "%d\n", (int)getpid());
        report(out, line);
        wait_forever();
    } else if (!strcmp(mode, "job")) {  /* a shell leads a session; its & job stays in it */
        if (fork() == 0) {
            setsid();
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "'%s' jobchild '%s' & wait", argv[0], out);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(97);
        }
        return 0;
    } else if (!strcmp(mode, "bad")) {
        /* Every rule broken that can be without a terminal: argv[3] is "--pidfile" and
         * argv[4] the pid file, written before the fork (so it names the parent); one
         * fork, no setsid(), cwd and stdio left as the launcher had them, a data file
         * open without close-on-exec, SIGTERM ignored. */
        if (argc < 5) return 2;
        char line[64];
        snprintf(line, sizeof line, "%d\n", (int)getpid());
        report(argv[4], line);
        umask(0002);
        if (fork() != 0) _exit(0);
        signal(SIGTERM, SIG_IGN);
        if (open(argv[4], O_RDONLY) < 0) _exit(98);
        report_pid(out);
        wait_forever();
    } else if (!strcmp(mode, "jobchild")) {
        char line[64];
        snprintf(line, sizeof line, "%d %d\n", (int)getpid(), (int)getsid(0));
        report(out, line);
        wait_forever();
    }
    return 2;
}
