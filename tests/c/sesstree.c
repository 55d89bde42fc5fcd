/* A session with orphans in it, for the session scan's test (tests/session_scan.rs).
 *
 * R (a subreaper, so everything is reaped here) forks P; P forks A, which calls setsid
 * and so leads a new session. In that session: a child A forked from a second thread
 * (T, so the thread's children list counts), a zombie A never waits for (Z), and a
 * group of its own led by B, whose children C1 and C2 outlive it, C1's child D
 * outliving C1 too: D and C2 are adopted by P ("parent": P is a subreaper) or by R
 * ("grand": it is not), neither of them A nor a member.
 *
 * Each process prints "ROLE PID"; A prints "ready" once every orphan has its new
 * parent. Everything holds until its stdin (the test's pipe) reaches end of file.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void hold(void) {
    char c;
    while (read(0, &c, 1) > 0) {
    }
}

static void say(const char *role) {
    printf("%s %d\n", role, (int)getpid());
    fflush(stdout);
}

static void *forking_thread(void *unused) {
    (void)unused;
    if (fork() == 0) {
        say("T");
        hold();
        _exit(0);
    }
    for (;;)
        pause();
    return NULL;
}

static void session_leader(void) {
    setsid();
    say("A");
    pthread_t thread;
    pthread_create(&thread, NULL, forking_thread, NULL);
    pid_t z = fork();
    if (z == 0)
        _exit(0);
    printf("Z %d\n", (int)z);
    fflush(stdout);
    pid_t b = fork();
    if (b == 0) {
        setpgid(0, 0);
        say("B");
        pid_t c1 = fork();
        if (c1 == 0) {
            say("C1");
            if (fork() == 0) {
                say("D");
                hold();
                _exit(0);
            }
            _exit(0);
        }
        if (fork() == 0) {
            say("C2");
            hold();
            _exit(0);
        }
        waitpid(c1, NULL, 0);
        _exit(0);
    }
    /* B has reaped C1, so D was adopted before; B reaped here, so C2 was too. */
    waitpid(b, NULL, 0);
    say("ready");
    hold();
    exit(0);
}

int main(int argc, char **argv) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    say("R");
    if (fork() == 0) {
        if (argc > 1 && strcmp(argv[1], "parent") == 0)
            prctl(PR_SET_CHILD_SUBREAPER, 1);
        say("P");
        if (fork() == 0)
            session_leader();
        hold();
        while (wait(NULL) > 0) {
        }
        exit(0);
    }
    hold();
    while (wait(NULL) > 0) {
    }
    return 0;
}
